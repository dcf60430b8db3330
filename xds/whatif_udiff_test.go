package xds

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lines(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// TestUnifiedDiffFormat: hunks as `diff -u` prints them (GNU diff's output
// for the same files), nearby changes merged, far ones apart; nothing for
// equal input.
func TestUnifiedDiffFormat(t *testing.T) {
	a := lines(30, func(i int) string { return fmt.Sprintf("l%d", i) })
	b := append([]string{"head"}, a...)
	b[5] = "five"                // a[4] changed
	b = append(b[:9], b[10:]...) // a[8] removed
	b = append(b, "tail")
	want := `--- a
+++ b
@@ -1,12 +1,12 @@
+head
 l0
 l1
 l2
 l3
-l4
+five
 l5
 l6
 l7
-l8
 l9
 l10
 l11
@@ -28,3 +28,4 @@
 l27
 l28
 l29
+tail
`
	assert.Equal(t, want, unifiedDiff("a", "b", a, b, 3))
	assert.Empty(t, unifiedDiff("a", "b", a, a, 3))
	assert.Equal(t, "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n", unifiedDiff("a", "b", nil, []string{"x"}, 3))
}

// TestLineDiffIsShortest: on random inputs the script turns a into b and
// is as short as the longest common subsequence allows.
func TestLineDiffIsShortest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		a := lines(r.IntN(30), func(int) string { return string(rune('a' + r.IntN(4))) })
		b := lines(r.IntN(30), func(int) string { return string(rune('a' + r.IntN(4))) })
		script := lineDiff(a, b)
		var gotA, gotB []string
		edits := 0
		for _, e := range script {
			if e.op != '+' {
				gotA = append(gotA, e.line)
			}
			if e.op != '-' {
				gotB = append(gotB, e.line)
			}
			if e.op != ' ' {
				edits++
			}
		}
		require.Equal(t, strings.Join(a, ","), strings.Join(gotA, ","), "case %d", n)
		require.Equal(t, strings.Join(b, ","), strings.Join(gotB, ","), "case %d", n)
		require.Equal(t, len(a)+len(b)-2*lcs(a, b), edits, "case %d: not a shortest script", n)
	}
}

func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

// TestLineDiffGivesUpOnHugeDifferences: past maxEditDistance the middle
// is replaced whole (still a correct script).
func TestLineDiffGivesUpOnHugeDifferences(t *testing.T) {
	a := lines(maxEditDistance+100, func(i int) string { return fmt.Sprintf("a%d", i) })
	b := lines(maxEditDistance+100, func(i int) string { return fmt.Sprintf("b%d", i) })
	a[0], b[0] = "same", "same"
	script := lineDiff(a, b)
	require.Len(t, script, 1+2*(maxEditDistance+99))
	assert.Equal(t, edit{' ', "same"}, script[0])
	assert.Equal(t, edit{'-', "a1"}, script[1])
	assert.Equal(t, edit{'+', "b1"}, script[maxEditDistance+100])
}
