// Package textwrap breaks help text into indented lines; the --help output
// of `meshd serve` and `meshd bootstrap` share it.
package textwrap

import "strings"

// Wrap breaks text into lines of at most width columns, each starting with
// indent (a word longer than the width gets a line of its own).
func Wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if line != indent && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}
