// Package logcheck checks that log lines are strict JSON: one JSON object
// per line, in UTF-8, with no key twice in any object. zerolog writes what
// it is given, so a logger that says Str("component", …) on top of one that
// already did writes the key twice; strict parsers such as Elasticsearch
// reject such a line.
//
// Line checks one line, Log a whole log, and Writer checks every line a
// test's logger writes.
package logcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting Line follows (its walk is recursive); a log
// line never comes close.
const maxDepth = 100

// Line returns why b, one log line without its newline, is not a single
// JSON object with unique keys at every depth, or nil. A duplicate key is
// named with the JSON pointer (RFC 6901) of its object when that is not
// the top level.
func Line(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("empty line")
	}
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("not a JSON object: starts with %s", kind(tok))
	}
	if err := object(dec, "", 1); err != nil {
		return err
	}
	end := dec.InputOffset()
	switch tok, err := dec.Token(); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("trailing data after the object at byte %d: %w", end, err)
	default:
		return fmt.Errorf("more than one JSON value on the line: %s after the object at byte %d", kind(tok), end)
	}
}

// object checks the members of an object whose '{' dec has just read, up
// to and including its '}'.
func object(dec *json.Decoder, ptr string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d at %s", maxDepth, ptr)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return truncated(err)
		}
		k := tok.(string) // the decoder allows nothing else here
		if seen[k] {
			if ptr == "" {
				return fmt.Errorf("duplicate key %q", k)
			}
			return fmt.Errorf("duplicate key %q in %s", k, ptr)
		}
		seen[k] = true
		if err := value(dec, ptr+"/"+escape(k), depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return truncated(err)
}

// value checks the next value, at ptr.
func value(dec *json.Decoder, ptr string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return truncated(err)
	}
	switch tok {
	case json.Delim('{'):
		return object(dec, ptr, depth+1)
	case json.Delim('['):
		if depth+1 > maxDepth {
			return fmt.Errorf("nested deeper than %d at %s", maxDepth, ptr)
		}
		for i := 0; dec.More(); i++ {
			if err := value(dec, ptr+"/"+strconv.Itoa(i), depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return truncated(err)
	}
	return nil
}

// truncated says what an early end of the line is; json.Decoder reports
// it as io.EOF, or io.ErrUnexpectedEOF within a value.
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not JSON: the line ends inside the object")
	}
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return nil
}

// escape escapes a key for a JSON pointer (RFC 6901 section 3).
func escape(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

// kind names a token for an error.
func kind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// Problem is a log line that Line rejects.
type Problem struct {
	Line int    // from 1
	Text string // the line, without its newline
	Err  error
}

func (p Problem) Error() string { return fmt.Sprintf("line %d: %v", p.Line, p.Err) }

// Report is what Log found.
type Report struct {
	Lines    int       // non-empty lines checked
	Bad      int       // lines Line rejected
	Problems []Problem // the first of them, as many as asked for
}

// Log checks every non-empty line read from r with Line, whatever its
// length. A last line without its newline is checked too. It keeps the
// first limit problems (all of them when limit <= 0); the error is r's.
func Log(r io.Reader, limit int) (Report, error) {
	var rep Report
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if line := bytes.TrimSuffix(b, []byte("\n")); len(bytes.TrimSpace(line)) > 0 {
			rep.Lines++
			if lerr := Line(line); lerr != nil {
				rep.Bad++
				if limit <= 0 || len(rep.Problems) < limit {
					rep.Problems = append(rep.Problems, Problem{Line: n, Text: string(line), Err: lerr})
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return rep, nil
		}
		if err != nil {
			return rep, err
		}
	}
}
