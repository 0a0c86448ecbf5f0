package view

import (
	"slices"

	"github.com/cutover/cutover/cutover/engine"
)

// visible picks the batches that get their own row when the table has
// room for n lines (0: no limit); cost(i) is the lines batch i's row takes.
// Every batch that needs a person's eyes keeps its row whatever n: those
// rolled back or held (left at the source), being rolled back, under way,
// or with a failed gate. The others are shown around the first batch not
// yet decided, a third of the room before it, and the rest are folded into
// one count line per run of hidden batches.
func visible(bs []engine.BatchState, n int, cost func(int) int) []bool {
	show := make([]bool, len(bs))
	total := 0
	for i := range bs {
		total += cost(i)
	}
	if n <= 0 || total <= n {
		for i := range show {
			show[i] = true
		}
		return show
	}
	lines := 1 // every batch hidden: one count line
	for _, i := range candidates(bs) {
		add := cost(i) + gapChange(show, i)
		if keep(bs[i]) || lines+add <= n {
			show[i] = true
			lines += add
		}
	}
	return show
}

// keep reports whether batch x keeps its row in a table of any size.
func keep(x engine.BatchState) bool {
	switch x.Phase {
	case engine.BatchRolledBack, engine.BatchHeld, engine.BatchRollingBack, engine.BatchAnnouncing, engine.BatchGating:
		return true
	}
	return whyText(x, "") != ""
}

// candidates are the batches' indices in the order they get a row: those
// that keep theirs first, then by distance from the first batch not yet
// decided, those after it before those before it.
func candidates(bs []engine.BatchState) []int {
	cur := len(bs) - 1
	for i, x := range bs {
		if x.Phase != engine.BatchCommitted && !x.Phase.AtSource() {
			cur = i
			break
		}
	}
	dist := func(i int) int {
		if i >= cur {
			return i - cur
		}
		return 2 * (cur - i)
	}
	order := make([]int, len(bs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ka, kb := keep(bs[a]), keep(bs[b])
		switch {
		case ka && !kb:
			return -1
		case kb && !ka:
			return 1
		}
		if d := dist(a) - dist(b); d != 0 {
			return d
		}
		return b - a // after the current batch first
	})
	return order
}

// gapChange is how the count lines change when hidden batch i is shown:
// one more when it splits a run of hidden batches, one less when it was a
// run by itself.
func gapChange(show []bool, i int) int {
	left := i > 0 && !show[i-1]
	right := i < len(show)-1 && !show[i+1]
	switch {
	case left && right:
		return 1
	case !left && !right:
		return -1
	}
	return 0
}
