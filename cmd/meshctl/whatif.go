package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
)

// Exit codes of what-if, usable as a CI gate before `kubectl apply`.
const (
	whatIfNoChange = 0
	whatIfChange   = 1
	whatIfRejected = 2
	whatIfError    = 3
)

// maxChangeFile is meshd's bound on a /debug/whatif body.
const maxChangeFile = 1 << 20

const whatIfHelp = `Usage: meshctl what-if -f CHANGE.yaml [--proxy PROXY | --namespace NS | --all] [--delete] [flags]

Asks meshd what its connected proxies would be sent if CHANGE.yaml were
applied, without applying it (POST /debug/whatif). The file holds any
objects meshd reads, several per file ("---"), including the istio
ConfigMap (key "mesh") as a MeshConfig change; -f - reads standard input.
--delete asks about deleting the objects the file names.

Per proxy scope whose config would change (proxies with equal scope are
sent the same config): the resources added, removed and changed per type
(listeners, routes, clusters, endpoints; secrets by name only), a unified
diff of the changed ones, the proxies that would be pushed and the bytes
(the size of the added and changed resources times the proxies). Then the
config errors the change would cause that meshd does not have now (object
and field), and the scopes whose new config would fail validation.

Without a selector every connected scope is compared and those that change
are shown; --all shows the unchanged ones too; --namespace and --proxy
compare only the scopes of that namespace or proxy.

Exit status: 0 no change, 1 change, 2 rejected (new config errors, or a
scope's config would fail validation), 3 error (usage, meshd unreachable).
`

// runWhatIf is `meshctl what-if`.
func runWhatIf(args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	var file, proxy, namespace string
	var all, del, diff bool
	fs := newFlagSet("what-if")
	cf.register(fs, "short, json, yaml")
	if t := fs.Lookup("timeout"); t != nil { // a what-if builds every scope twice
		t.DefValue = "1m0s"
		_ = t.Value.Set(t.DefValue)
	}
	fs.StringVar(&file, "f", "", "the change: a YAML file of one or more objects (- for standard input)")
	fs.StringVar(&file, "filename", "", "the change (same as -f)")
	fs.StringVar(&proxy, "proxy", "", "only the scope of this proxy (node ID or pod.namespace)")
	fs.StringVar(&namespace, "namespace", "", "only the scopes of the proxies of this namespace")
	fs.BoolVar(&all, "all", false, "show every connected scope, unchanged ones too")
	fs.BoolVar(&del, "delete", false, "what deleting the objects the file names would do")
	fs.BoolVar(&diff, "diff", true, "print the unified diff of changed resources (-o short)")
	pos, err := parseArgs(fs, args)
	switch {
	case err != nil:
	case len(pos) > 0:
		err = fmt.Errorf("unexpected arguments %q (give the change with -f)", pos)
	case file == "":
		err = errors.New("-f CHANGE.yaml is required")
	case countSet(proxy != "", namespace != "", all) > 1:
		err = errors.New("give at most one of --proxy, --namespace and --all")
	default:
		err = cf.checkOutput("short", "json", "yaml")
	}
	if err != nil {
		if code := usageError(stdout, stderr, fs, whatIfHelp, err); code != exitOK {
			return whatIfError
		}
		return exitOK
	}
	data, name, err := readChange(file)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl what-if: %v\n", err)
		return whatIfError
	}
	q := url.Values{"file": {name}}
	for k, v := range map[string]string{"proxy": proxy, "namespace": namespace} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if all {
		q.Set("all", "true")
	}
	if del {
		q.Set("delete", "true")
	}
	c := newClient(cf.meshdAddr, cf.timeout)
	body, err := c.post("/debug/whatif?"+q.Encode(), data)
	var rep whatIfReport
	if err == nil {
		if err = json.Unmarshal(body, &rep); err != nil {
			err = fmt.Errorf("decoding meshd's answer: %w", err)
		}
	}
	if err == nil {
		if cf.output == "short" {
			printWhatIf(stdout, &rep, name, c.addr, diff)
		} else {
			err = printRaw(stdout, body, cf.output)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshctl what-if: %v\n", err)
		return whatIfError
	}
	return rep.exitCode()
}

func countSet(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// readChange reads the change file (or standard input for "-") and
// returns it with the name meshd gives its documents' sources.
func readChange(path string) (data []byte, name string, err error) {
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, maxChangeFile+1))
		name = "stdin.yaml"
	} else {
		data, err = os.ReadFile(path)
		name = filepath.Base(path)
	}
	switch {
	case err != nil:
		return nil, "", fmt.Errorf("reading the change: %w", err)
	case len(data) > maxChangeFile:
		return nil, "", fmt.Errorf("%s is larger than meshd accepts (%d bytes)", name, maxChangeFile)
	}
	return data, name, nil
}

// post sends body to path (with its query) and returns the body of a 2xx
// answer.
func (c *client) post(path string, body []byte) ([]byte, error) {
	u := c.base + path
	resp, err := c.http.Post(u, "application/yaml", bytes.NewReader(body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &unreachableError{addr: c.addr, err: err}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the answer: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("POST %s: HTTP %d: %s", u, resp.StatusCode, errorMessage(out))
	}
	return out, nil
}

// exitCode is what-if's exit status for the report.
func (r *whatIfReport) exitCode() int {
	switch {
	case r.Rejected:
		return whatIfRejected
	case r.Changed:
		return whatIfChange
	}
	return whatIfNoChange
}

func init() {
	whatIf = runWhatIf
}
