package runbook

import (
	"bufio"
	"encoding/csv"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// csvRows counts what parseCSV would read with encoding/csv: the
// reference for countCSVRows.
func csvRows(t *testing.T, s string, comma rune) int {
	t.Helper()
	r := csv.NewReader(strings.NewReader(s))
	r.Comma = comma
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	n := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil || !blankRecord(rec) {
			n++
		}
	}
}

func TestCountCSVRows(t *testing.T) {
	tests := []struct {
		in    string
		comma rune
	}{
		{"", ','},
		{"a,b\n", ','},
		{"a,b", ','},
		{"a,b\r\nc,d\r\n", ','},
		{"\n\n\r\na\n\n", ','},
		{"# comment\na\n#another, with a comma\nb\n", ','},
		{"  # not a comment\n", ','},
		{",,,\n , ,\n\t,\r\n", ','},
		{`"",""` + "\n" + ` "",  ""` + "\n", ','},
		{`""""` + "\n", ','},
		{"\"a\nb\",c\n\"# in a quote\n\",d\n", ','},
		{"\"line one\n\n# still quoted\n\"\n", ','},
		{"a;\"b;c\";d\n;;\n", ';'},
		{"a\tb\n\t\t\n", '\t'},
		{"vm1,10.64.0.1,t,1,\nvm2,10.64.0.2,t,1,http:80/\n", ','},
		{"a\"b,c\nd\n", ','},       // bare quote: one record, broken
		{"\"abc\nxyz", ','},        // unterminated at the end
		{"\"abc\"x,y\nz\n", ','},   // text after a closing quote
		{"x,\"multi\nline\"", ','}, // no newline at the end
	}
	for _, tt := range tests {
		got, err := countCSVRows(bufio.NewReaderSize(strings.NewReader(tt.in), 16), tt.comma)
		if want := csvRows(t, tt.in, tt.comma); err != nil || got != want {
			t.Errorf("countCSVRows(%q) = %d, %v; encoding/csv reads %d", tt.in, got, err, want)
		}
	}
}

// TestCountCSVRowsRandom compares with encoding/csv on well-formed random
// CSV (the broken kind is only ever counted, see countCSVRows).
func TestCountCSVRowsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// No unquoted field starts with #: a record starting so is a
	// comment line, which leaves any quote on it open (broken CSV).
	pieces := []string{"a", "x y", " ", "\t", "a#", "\r", "", "ø"}
	quotedPieces := []string{"a", ",", "\n", "\"\"", " ", "#", "\r\n"}
	for range 2000 {
		comma := []rune{',', ';'}[rng.IntN(2)]
		var b strings.Builder
		for range rng.IntN(8) {
			switch rng.IntN(6) {
			case 0:
				b.WriteString("#" + pieces[rng.IntN(len(pieces))] + "\n")
				continue
			case 1:
				b.WriteString("\n")
				continue
			}
			for f := range 1 + rng.IntN(4) {
				if f > 0 {
					b.WriteRune(comma)
				}
				if rng.IntN(3) == 0 {
					b.WriteString(strings.Repeat(" ", rng.IntN(2)) + `"`)
					for range rng.IntN(4) {
						b.WriteString(quotedPieces[rng.IntN(len(quotedPieces))])
					}
					b.WriteString(`"`)
					continue
				}
				for range rng.IntN(3) {
					b.WriteString(pieces[rng.IntN(len(pieces))])
				}
			}
			b.WriteString([]string{"\n", "\r\n"}[rng.IntN(2)])
		}
		in := b.String()
		if rng.IntN(4) == 0 {
			in = strings.TrimSuffix(strings.TrimSuffix(in, "\n"), "\r") // no newline at the end
		}
		want := csvRows(t, in, comma)
		got, err := countCSVRows(bufio.NewReaderSize(strings.NewReader(in), 16), comma)
		if err != nil || got != want {
			t.Fatalf("countCSVRows(%q) = %d, %v; encoding/csv reads %d", in, got, err, want)
		}
	}
}
