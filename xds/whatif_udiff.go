package xds

import (
	"fmt"
	"strings"
)

// maxEditDistance bounds the work of one line diff (Myers' algorithm costs
// O((N+M)·D) time and O(D²) memory for D differing lines): beyond it the
// differing middle is shown as removed, then added.
const maxEditDistance = 2000

// edit is one line of an edit script: ' ' kept, '-' removed, '+' added.
type edit struct {
	op   byte
	line string
}

// unifiedDiff is the unified diff (`diff -u`) turning a into b, with
// context lines around each change, headed by the two names; "" when they
// are equal. The same input always gives the same output.
func unifiedDiff(aName, bName string, a, b []string, context int) string {
	script := lineDiff(a, b)
	var sb strings.Builder
	for _, h := range hunks(script, context) {
		if sb.Len() == 0 {
			fmt.Fprintf(&sb, "--- %s\n+++ %s\n", aName, bName)
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(h.aStart, h.aLen), hunkRange(h.bStart, h.bLen))
		for _, e := range script[h.from:h.to] {
			sb.WriteByte(e.op)
			sb.WriteString(e.line)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

// lineDiff returns a shortest edit script turning a into b: the common
// prefix and suffix kept, the middle by Myers' algorithm.
func lineDiff(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	out := make([]edit, 0, len(a)+len(b)-pre-suf)
	for _, l := range a[:pre] {
		out = append(out, edit{' ', l})
	}
	out = append(out, myers(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		out = append(out, edit{' ', l})
	}
	return out
}

// myers is Myers' O((N+M)·D) shortest edit script, keeping each round's
// furthest-reaching paths to trace the script back; past maxEditDistance
// rounds it gives up and replaces a with b.
func myers(a, b []string) []edit {
	n, m := len(a), len(b)
	var trace [][]int // trace[d][k+d]: furthest x on diagonal k after d edits
	for d := 0; d <= n+m; d++ {
		if d > maxEditDistance {
			return replaceAll(a, b)
		}
		v := make([]int, 2*d+1)
		for k := -d; k <= d; k += 2 {
			x := 0
			switch {
			case d == 0:
			case k == -d || (k != d && trace[d-1][k-1+d-1] < trace[d-1][k+1+d-1]):
				x = trace[d-1][k+1+d-1] // down: insert b[y]
			default:
				x = trace[d-1][k-1+d-1] + 1 // right: delete a[x]
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[k+d] = x
			if x >= n && y >= m {
				return backtrack(append(trace, v), a, b)
			}
		}
		trace = append(trace, v)
	}
	return nil // not reached: d = n+m always ends
}

// backtrack turns Myers' trace into the edit script, from the end.
func backtrack(trace [][]int, a, b []string) []edit {
	var rev []edit
	x, y := len(a), len(b)
	for d := len(trace) - 1; d > 0; d-- {
		prev := trace[d-1]
		k := x - y
		var pk int
		if k == -d || (k != d && prev[k-1+d-1] < prev[k+1+d-1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := prev[pk+d-1]
		py := px - pk
		for x > px && y > py {
			x, y = x-1, y-1
			rev = append(rev, edit{' ', a[x]})
		}
		if pk == k+1 {
			y--
			rev = append(rev, edit{'+', b[y]})
		} else {
			x--
			rev = append(rev, edit{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, edit{' ', a[x]})
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

func replaceAll(a, b []string) []edit {
	out := make([]edit, 0, len(a)+len(b))
	for _, l := range a {
		out = append(out, edit{'-', l})
	}
	for _, l := range b {
		out = append(out, edit{'+', l})
	}
	return out
}

// hunk is a range of an edit script shown together, with the lines of a
// and b it covers (1-based starts).
type hunk struct {
	from, to     int
	aStart, aLen int
	bStart, bLen int
}

// hunks groups the changes of script with up to context kept lines around
// each; changes closer than 2·context share a hunk.
func hunks(script []edit, context int) []hunk {
	var out []hunk
	aLine, bLine := make([]int, len(script)+1), make([]int, len(script)+1)
	for i, e := range script {
		aLine[i+1], bLine[i+1] = aLine[i], bLine[i]
		if e.op != '+' {
			aLine[i+1]++
		}
		if e.op != '-' {
			bLine[i+1]++
		}
	}
	for i := 0; i < len(script); {
		if script[i].op == ' ' {
			i++
			continue
		}
		from := max(i-context, 0)
		end := i // one past the last change of the hunk
		for j := i; j < len(script); j++ {
			if script[j].op != ' ' {
				end = j + 1
			} else if j-end >= 2*context {
				break
			}
		}
		to := min(end+context, len(script))
		out = append(out, hunk{from: from, to: to,
			aStart: aLine[from] + 1, aLen: aLine[to] - aLine[from],
			bStart: bLine[from] + 1, bLen: bLine[to] - bLine[from]})
		i = to
	}
	return out
}

// hunkRange formats a hunk's range as diff -u does: "start,len", "start"
// for one line, and the line before for none.
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start-1)
	case 1:
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
