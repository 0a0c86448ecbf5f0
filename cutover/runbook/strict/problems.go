package strict

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// FieldError is one mistake in a runbook or an inventory.
type FieldError struct {
	File  string `json:"file"`
	Line  int    `json:"line,omitempty"`  // 1-based; 0 when there is no line (missing file, totals)
	Field string `json:"field,omitempty"` // e.g. "bgp.peers[0].address" or "address"
	Value string `json:"value,omitempty"` // the offending input, as written
	Msg   string `json:"msg"`
}

// Error formats the mistake as "file:line: field: msg (value "x")",
// leaving out the parts that are empty.
func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Value != "" {
		fmt.Fprintf(&b, " (value %s)", quoteValue(e.Value))
	}
	return b.String()
}

// quoteValue quotes v for an error message, shortening very long values.
func quoteValue(v string) string {
	const max = 80
	if r := []rune(v); len(r) > max {
		return strconv.Quote(string(r[:max])) + "…"
	}
	return strconv.Quote(v)
}

// ValidationErrors is every mistake found in a runbook and its inventory,
// in file order and then line order. Error gives one mistake per line.
type ValidationErrors []FieldError

// Error lists the mistakes, one per line.
func (v ValidationErrors) Error() string {
	var b strings.Builder
	for i, e := range v {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Warning is something that is allowed but probably not meant, such as
// an extra inventory column that is ignored. The package never logs;
// callers show warnings to people.
type Warning struct {
	File  string `json:"file"`
	Line  int    `json:"line,omitempty"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"msg"`
}

// String formats the warning like a FieldError.
func (w Warning) String() string {
	return FieldError{File: w.File, Line: w.Line, Field: w.Field, Msg: w.Msg}.Error()
}

// Problems collects errors and warnings while loading.
type Problems struct {
	errs  ValidationErrors
	warns []Warning
	seen  map[errKey]bool
}

type errKey struct {
	file, field string
	line        int
}

// add records an error. Only the first error per file, line and field is
// kept: a value that failed to parse is not also reported as, say, zero.
func (p *Problems) Add(file string, line int, field, value, format string, args ...any) {
	k := errKey{file, field, line}
	if field != "" && p.seen[k] {
		return
	}
	if p.seen == nil {
		p.seen = map[errKey]bool{}
	}
	p.seen[k] = true
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	p.errs = append(p.errs, FieldError{File: file, Line: line, Field: field, Value: value, Msg: msg})
}

// hasErr reports whether an error was recorded for file on field or on
// a field under it; later checks use it not to pile consequences on a
// mistake already reported.
func (p *Problems) HasErr(file, field string) bool {
	for _, e := range p.errs {
		if e.File == file && (e.Field == field || strings.HasPrefix(e.Field, field+".")) {
			return true
		}
	}
	return false
}

func (p *Problems) Warn(file string, line int, field, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	p.warns = append(p.warns, Warning{File: file, Line: line, Field: field, Msg: msg})
}

// err returns the collected errors sorted by file (the files named
// first, then in order of first appearance) and line, or nil.
func (p *Problems) Err(first ...string) error {
	if len(p.errs) == 0 {
		return nil
	}
	sortErrors(p.errs, first)
	return p.errs
}

func sortErrors(errs ValidationErrors, first []string) {
	rank := map[string]int{}
	for _, f := range first {
		rank[f] = len(rank)
	}
	for _, e := range errs {
		if _, ok := rank[e.File]; !ok {
			rank[e.File] = len(rank)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if rank[a.File] != rank[b.File] {
			return rank[a.File] < rank[b.File]
		}
		return a.Line < b.Line
	})
}

// CleanErr turns a parse error that repeats its input, such as
// `ParseAddr("10.0.0.300"): IPv4 field has value >255`, into the part
// after the input, since FieldError shows the value anyway.
func CleanErr(err error, value string) string {
	s := err.Error()
	q := strconv.Quote(value)
	for _, sep := range []string{"): ", ": "} {
		if i := strings.Index(s, sep); i >= 0 && strings.Contains(s[:i], q) {
			return s[i+len(sep):]
		}
	}
	return s
}

// Warnings returns the warnings collected so far.
func (p *Problems) Warnings() []Warning { return p.warns }

// Len is the number of errors collected so far.
func (p *Problems) Len() int { return len(p.errs) }
