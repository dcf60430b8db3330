package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// secretHelp is the help of proxy-config secret.
const secretHelp = `proxy-config secret: RESOURCE NAME, TYPE (Cert Chain or CA), STATUS (ACTIVE,
WARMING), VALID CERT (now within its validity), SERIAL NUMBER, NOT AFTER and
NOT BEFORE of the first certificate of each SDS secret. From meshd, these are
the secrets meshd serves the proxy (credentialName of its Gateways; the
private key is never shown). -o json|yaml prints istioctl's secret items
(with the PEM certificate).
`

// now is the clock VALID CERT is judged by (tests pin it).
var now = time.Now

// secretItem is istioctl's secret item: one SDS secret and its first
// certificate's details.
type secretItem struct {
	Name         string `json:"resource_name"`
	Data         string `json:"cert"`
	State        string `json:"state"`
	Valid        bool   `json:"cert_valid"`
	SerialNumber string `json:"serial_number"`
	NotAfter     string `json:"not_after"`
	NotBefore    string `json:"not_before"`
	Type         string `json:"type"`
}

// secretFlags registers nothing (secret has no filters) and returns its
// printer.
func secretFlags(*flag.FlagSet) printer {
	return func(w io.Writer, src source, output string) error {
		d, err := loadDump(src)
		if err != nil {
			return err
		}
		items := make([]secretItem, 0, len(d.secrets))
		for _, s := range d.secrets {
			items = append(items, newSecretItem(s))
		}
		if output != "short" {
			return printJSONList(w, items, output)
		}
		return printSecrets(w, items)
	}
}

// newSecretItem reads the certificate chain (or, for a validation
// context, the trusted CA) of a secret.
func newSecretItem(s secretEntry) secretItem {
	it := secretItem{Name: s.name, State: s.state}
	if s.version == "uninitialized" {
		it.State = "UNINITIALIZED"
	}
	data := dataSource(s.secret.GetTlsCertificate().GetCertificateChain())
	if data == "" {
		data = dataSource(s.secret.GetValidationContext().GetTrustedCa())
	}
	it.Data = data
	block, _ := pem.Decode([]byte(data))
	if block == nil {
		return it
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return it
	}
	it.Type = "Cert Chain"
	if cert.IsCA {
		it.Type = "CA"
	}
	t := now()
	it.Valid = t.After(cert.NotBefore) && t.Before(cert.NotAfter)
	it.SerialNumber = fmt.Sprintf("%032x", cert.SerialNumber)
	it.NotAfter = cert.NotAfter.Format(time.RFC3339)
	it.NotBefore = cert.NotBefore.Format(time.RFC3339)
	return it
}

// dataSource returns an inline data source's content ("" for a file or
// an environment variable, which a dump does not carry).
func dataSource(ds *corev3.DataSource) string {
	if b := ds.GetInlineBytes(); len(b) > 0 {
		return string(b)
	}
	return ds.GetInlineString()
}

// printSecrets prints istioctl's secret table.
func printSecrets(w io.Writer, items []secretItem) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, "No secret items to show.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 5, 5, ' ', 0)
	fmt.Fprintln(tw, strings.Join([]string{"RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"}, "\t"))
	for _, s := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%s\n", s.Name, s.Type, s.State, s.Valid, s.SerialNumber, s.NotAfter, s.NotBefore)
	}
	return tw.Flush()
}
