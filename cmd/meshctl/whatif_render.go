package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// whatIfReport is meshd's /debug/whatif answer (xds.WhatIfReport).
type whatIfReport struct {
	SnapshotSeq    uint64         `json:"snapshotSeq"`
	Objects        []whatIfObject `json:"objects"`
	Rejected       bool           `json:"rejected"`
	Changed        bool           `json:"changed"`
	Errors         []objectError  `json:"errors"`
	Cleared        []objectError  `json:"clearedErrors"`
	ScopesSelected int            `json:"scopesSelected"`
	ScopesBuilt    int            `json:"scopesBuilt"`
	ScopesChanged  int            `json:"scopesChanged"`
	Truncated      bool           `json:"truncated"`
	ProxiesPushed  int            `json:"proxiesPushed"`
	BytesPushed    int64          `json:"bytesPushed"`
	Scopes         []whatIfScope  `json:"scopes"`
	Notes          []string       `json:"notes"`
}

// whatIfObject is an object the change names (xds.WhatIfObject).
type whatIfObject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Action    string `json:"action"`
}

// objectError is a config error (model.ObjectError).
type objectError struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Source    string `json:"source"`
	Field     string `json:"field"`
	Message   string `json:"message"`
}

// whatIfScope is one scope's change (xds.WhatIfScope).
type whatIfScope struct {
	Scope            string       `json:"scope"`
	Proxies          []string     `json:"proxies"`
	Changed          bool         `json:"changed"`
	Rejected         bool         `json:"rejected"`
	ValidationErrors []string     `json:"validationErrors"`
	Types            []whatIfType `json:"types"`
	Bytes            int64        `json:"bytes"`
}

// whatIfType is one resource type's change (xds.WhatIfType).
type whatIfType struct {
	Type          string   `json:"type"`
	Added         []string `json:"added"`
	Removed       []string `json:"removed"`
	Changed       []string `json:"changed"`
	BytesPerProxy int64    `json:"bytesPerProxy"`
	Diff          string   `json:"diff"`
}

// String formats the error as meshd logs it: object, source, field, message.
func (e objectError) String() string {
	s := e.Kind
	if s == "" {
		s = "object"
	}
	if e.Name != "" {
		s += " " + strings.TrimPrefix(e.Namespace+"/"+e.Name, "/")
	}
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	if e.Field != "" {
		s += " field " + e.Field
	}
	return s + ": " + e.Message
}

// printWhatIf prints the report for people: the objects, each changed
// scope with its resources and diffs, the new errors, and a verdict that
// matches the exit status.
func printWhatIf(w io.Writer, r *whatIfReport, name, addr string, diffs bool) {
	fmt.Fprintf(w, "what-if %s against meshd %s (snapshot %d)\n\n", name, addr, r.SnapshotSeq)
	if len(r.Objects) > 0 {
		tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
		fmt.Fprintln(tw, "OBJECT\tACTION")
		for _, o := range r.Objects {
			fmt.Fprintf(tw, "%s %s\t%s\n", o.Kind, strings.TrimPrefix(o.Namespace+"/"+o.Name, "/"), o.Action)
		}
		_ = tw.Flush()
		fmt.Fprintln(w)
	}
	for _, sc := range r.Scopes {
		printScope(w, sc, diffs)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "New config errors (%d):\n", len(r.Errors))
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
		fmt.Fprintln(w)
	}
	if len(r.Cleared) > 0 {
		fmt.Fprintf(w, "Config errors the change clears (%d):\n", len(r.Cleared))
		for _, e := range r.Cleared {
			fmt.Fprintf(w, "  %s\n", e)
		}
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w, verdict(r))
}

// printScope prints one scope: proxies, resources per type, diffs.
func printScope(w io.Writer, sc whatIfScope, diffs bool) {
	state := "unchanged"
	switch {
	case sc.Rejected:
		state = "REJECTED: its new config fails validation; it would keep its current config"
	case sc.Changed:
		state = fmt.Sprintf("%s would be pushed, %d bytes", plural(len(sc.Proxies), "proxy", "proxies"), sc.Bytes)
	}
	fmt.Fprintf(w, "scope %s: %s\n", sc.Scope, state)
	for _, p := range sc.Proxies {
		fmt.Fprintf(w, "  proxy %s\n", p)
	}
	for _, e := range sc.ValidationErrors {
		fmt.Fprintf(w, "  validation: %s\n", e)
	}
	for _, t := range sc.Types {
		var parts []string
		for _, l := range []struct {
			what  string
			names []string
		}{{"added", t.Added}, {"removed", t.Removed}, {"changed", t.Changed}} {
			if len(l.names) > 0 {
				parts = append(parts, fmt.Sprintf("%d %s (%s)", len(l.names), l.what, strings.Join(l.names, ", ")))
			}
		}
		fmt.Fprintf(w, "  %s: %s; %d bytes per proxy\n", t.Type, strings.Join(parts, ", "), t.BytesPerProxy)
	}
	for _, t := range sc.Types {
		if diffs && t.Diff != "" {
			fmt.Fprintln(w)
			for _, l := range strings.SplitAfter(strings.TrimSuffix(t.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "    %s", l)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
}

// verdict is the last line: what the exit status says, and why.
func verdict(r *whatIfReport) string {
	scopes := fmt.Sprintf("%d of %d compared scopes change", r.ScopesChanged, r.ScopesBuilt)
	if r.Truncated {
		scopes += fmt.Sprintf(" (%d selected)", r.ScopesSelected)
	}
	push := fmt.Sprintf("%s would be pushed, %d bytes", plural(r.ProxiesPushed, "proxy", "proxies"), r.BytesPushed)
	rejectedScopes := 0
	for _, sc := range r.Scopes {
		if sc.Rejected {
			rejectedScopes++
		}
	}
	switch {
	case r.Rejected:
		why := []string{}
		if len(r.Errors) > 0 {
			why = append(why, plural(len(r.Errors), "new config error", "new config errors"))
		}
		if rejectedScopes > 0 {
			why = append(why, plural(rejectedScopes, "scope fails", "scopes fail")+" validation")
		}
		return fmt.Sprintf("REJECTED: %s; %s; %s.", strings.Join(why, ", "), scopes, push)
	case r.Changed:
		return fmt.Sprintf("CHANGE: %s; %s.", scopes, push)
	}
	return fmt.Sprintf("NO CHANGE: no connected proxy's config changes (%d scopes compared).", r.ScopesBuilt)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
