package file

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitDocuments(t *testing.T) {
	type doc struct {
		data string
		line int
	}
	tests := []struct {
		name string
		in   string
		want []doc
	}{
		{"single", "a: 1\n", []doc{{"a: 1\n", 1}}},
		{"no trailing newline", "a: 1", []doc{{"a: 1", 1}}},
		{"leading separator", "---\na: 1\n", []doc{{"a: 1\n", 2}}},
		{"two docs", "a: 1\n---\nb: 2\n", []doc{{"a: 1\n", 1}, {"b: 2\n", 3}}},
		{"empty and comment-only docs skipped", "# header\n---\n\n---\na: 1\n---\n# only a comment\n---\nb: 2\n---\n",
			[]doc{{"a: 1\n", 5}, {"b: 2\n", 9}}},
		{"separator with comment", "a: 1\n--- # next\nb: 2\n", []doc{{"a: 1\n", 1}, {"b: 2\n", 3}}},
		{"content on separator line", "--- {b: 2}\n", []doc{{"{b: 2}\n", 1}}},
		{"CRLF", "a: 1\r\n---\r\nb: 2\r\n", []doc{{"a: 1\r\n", 1}, {"b: 2\r\n", 3}}},
		{"document end marker", "a: 1\n...\n---\nb: 2\n", []doc{{"a: 1\n", 1}, {"b: 2\n", 4}}},
		{"dashes inside a value are not separators", "a: |\n  ---\n  x\n", []doc{{"a: |\n  ---\n  x\n", 1}}},
		{"longer dash runs are not separators", "a: 1\n----\n", []doc{{"a: 1\n----\n", 1}}},
		{"empty file", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []doc
			for _, d := range splitDocuments([]byte(tt.in)) {
				got = append(got, doc{string(d.data), d.line})
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
