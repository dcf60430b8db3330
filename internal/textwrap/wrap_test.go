package textwrap

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWrap(t *testing.T) {
	assert.Equal(t, "  one two\n  three\n", Wrap("one two three", "  ", 10))
	assert.Equal(t, "  averyveryverylongword\n  x\n", Wrap("averyveryverylongword x", "  ", 10))
	assert.Equal(t, "  \n", Wrap("", "  ", 10))
}
