package file

import (
	"bytes"
	"strings"
)

// rawDoc is one YAML document of a file.
type rawDoc struct {
	data []byte
	// line is the 1-based line of the file where data starts.
	line int
}

// splitDocuments splits a multi-document YAML file on "---" (and "...")
// lines. Documents holding nothing but blank lines and comments are dropped,
// so a leading "---" or a trailing separator does not count as a document.
func splitDocuments(data []byte) []rawDoc {
	var (
		out   []rawDoc
		cur   bytes.Buffer
		start = 1
	)
	flush := func() {
		if hasContent(cur.Bytes()) {
			out = append(out, rawDoc{data: bytes.Clone(cur.Bytes()), line: start})
		}
		cur.Reset()
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, l := range lines {
		rest, ok := separator(string(l))
		if !ok {
			cur.Write(l)
			continue
		}
		flush()
		start = i + 2
		if rest != "" {
			// "--- {kind: ...}": the document starts on the separator line.
			cur.WriteString(rest + "\n")
			start = i + 1
		}
	}
	flush()
	return out
}

// separator reports whether line is a document separator and returns any
// content that follows the marker on the same line (comments excluded).
func separator(line string) (string, bool) {
	line = strings.TrimRight(line, "\r\n")
	for _, marker := range []string{"---", "..."} {
		if line == marker {
			return "", true
		}
		if strings.HasPrefix(line, marker+" ") || strings.HasPrefix(line, marker+"\t") {
			rest := strings.TrimSpace(line[len(marker):])
			if strings.HasPrefix(rest, "#") {
				rest = ""
			}
			return rest, true
		}
	}
	return "", false
}

// hasContent reports whether a document holds anything but blank lines and
// comments.
func hasContent(doc []byte) bool {
	for _, l := range bytes.Split(doc, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' {
			return true
		}
	}
	return false
}
