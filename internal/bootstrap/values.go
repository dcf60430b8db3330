package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// The flag.Value implementations below bind a flag to its Options field.
// Set validates; its error says what is wanted, and Parse prefixes the flag
// or environment variable and the rejected text.

// stringValue is a string that check accepts (nil: anything non-empty).
type stringValue struct {
	p     *string
	check func(string) error
}

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v stringValue) Set(s string) error {
	if v.check != nil {
		if err := v.check(s); err != nil {
			return err
		}
	} else if s == "" {
		return errors.New("want a non-empty value")
	}
	*v.p = s
	return nil
}

// portValue is a TCP port, 1 to 65535.
type portValue struct{ p *uint32 }

func (v portValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*v.p), 10)
}

func (v portValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return errors.New("want a port number from 1 to 65535")
	}
	*v.p = uint32(n)
	return nil
}

// ipsValue is a comma-separated list of IP addresses, duplicates dropped
// (pilot-agent does the same); the first is the one in the node ID.
type ipsValue struct{ p *[]string }

func (v ipsValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v ipsValue) Set(s string) error {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(f))
		if ip == nil {
			return fmt.Errorf("%q is not an IP address; want IPs separated by commas, the pod IP first", f)
		}
		if t := ip.String(); !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	*v.p = out
	return nil
}

// labelsValue is "k=v,k2=v2". Keys must be non-empty and distinct.
type labelsValue struct{ p *map[string]string }

func (v labelsValue) String() string {
	if v.p == nil || len(*v.p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(*v.p))
	for k := range *v.p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + (*v.p)[k]
	}
	return strings.Join(keys, ",")
}

func (v labelsValue) Set(s string) error {
	out := map[string]string{}
	if s == "" {
		*v.p = out
		return nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value; want labels such as app=frontend,version=v1", kv)
		}
		if _, dup := out[k]; dup {
			return fmt.Errorf("label %q given twice", k)
		}
		out[k] = strings.TrimSpace(val)
	}
	*v.p = out
	return nil
}

// oneOf accepts exactly one of choices.
func oneOf(choices ...string) func(string) error {
	return func(s string) error {
		for _, c := range choices {
			if s == c {
				return nil
			}
		}
		return fmt.Errorf("want %s", strings.Join(choices, " or "))
	}
}

// dnsLabel accepts an RFC 1123 label, as Kubernetes namespaces are.
func dnsLabel(s string) error {
	if !isDNSLabel(s) {
		return errors.New("want a DNS label: lower-case letters, digits and '-', at most 63, starting and ending alphanumeric")
	}
	return nil
}

// dnsName accepts an RFC 1123 subdomain such as cluster.local.
func dnsName(s string) error {
	if s == "" || len(s) > 253 {
		return errors.New("want a DNS name such as cluster.local")
	}
	for _, l := range strings.Split(s, ".") {
		if !isDNSLabel(l) {
			return errors.New("want a DNS name such as cluster.local")
		}
	}
	return nil
}

func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, c := range s {
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// nodeField accepts text that can sit in one field of a node ID: non-empty,
// no '~' (the separator) and no white space.
func nodeField(s string) error {
	if s == "" || strings.ContainsAny(s, "~ \t\n") {
		return errors.New("want a non-empty value without '~' or spaces")
	}
	return nil
}

// ipAddress accepts one IP address.
func ipAddress(s string) error {
	if net.ParseIP(s) == nil {
		return errors.New("want an IP address such as 127.0.0.1 (Envoy's admin binds an IP, not a name)")
	}
	return nil
}

// hostPort accepts host:port with a non-empty host (an IP or a DNS name)
// and a port from 1 to 65535.
func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return errors.New("want host:port, e.g. 127.0.0.1:15010 or meshd.istio-system.svc:15010")
	}
	if net.ParseIP(host) == nil && dnsName(strings.TrimSuffix(host, ".")) != nil {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q: want a port number from 1 to 65535", port)
	}
	return nil
}

// locality accepts region[/zone[/subzone]], Istio's locality form.
func locality(s string) error {
	parts := strings.Split(s, "/")
	if len(parts) > 3 || parts[0] == "" {
		return errors.New("want region, region/zone or region/zone/subzone")
	}
	return nil
}

// notGRPC accepts any generator but proxyless gRPC's.
func notGRPC(s string) error {
	if s == "grpc" {
		return errors.New(`"grpc" is for proxyless gRPC clients, which take a gRPC xDS bootstrap, not an Envoy one; leave it empty for Envoy`)
	}
	return nil
}

// boolValue is a switch: --flag alone sets it, --flag=false clears it.
type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}

// IsBoolFlag lets the flag stand alone, without a value.
func (v boolValue) IsBoolFlag() bool { return true }
