package strict

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A strict YAML decoder over yaml.v3 nodes. yaml.v3's own KnownFields mode
// stops being helpful at the first error and words errors in Go types; this
// one reports every unknown or duplicate key and every wrong type at once,
// as FieldErrors with the field's path ("bgp.peers[0].hold_time") and line,
// and remembers the line of every field it saw so that later checks can
// point at the right line too.

// Positions maps a field path to the line of its key (or list item).
type Positions map[string]int

// Line returns the line of path, or of its closest parent that has one.
func (p Positions) Line(path string) int {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Has reports whether path was written in the file.
func (p Positions) Has(path string) bool {
	_, ok := p[path]
	return ok
}

type Decoder struct {
	File string    // the file, for messages
	P    *Problems // where mistakes go
	Pos  Positions // filled with the line of every field seen
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	nodeDecoderType     = reflect.TypeFor[NodeDecoder]()
)

// ParseYAML parses data as one YAML document and returns its root node.
func ParseYAML(file string, data []byte, p *Problems) *yaml.Node {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			p.Add(file, 0, "", "", "the file is empty")
			return nil
		}
		line, msg := yamlErrLine(err)
		p.Add(file, line, "", "", "%s", msg)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.Add(file, extra.Line, "", "", "more than one YAML document (a second --- ?)")
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			p.Add(file, 0, "", "", "the file is empty")
			return nil
		}
		n = n.Content[0]
	}
	return n
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlErrLine splits a yaml.v3 syntax error into its line and message.
func yamlErrLine(err error) (int, string) {
	s := err.Error()
	if m := yamlLineRE.FindStringSubmatch(s); m != nil {
		l, _ := strconv.Atoi(m[1])
		return l, "YAML syntax: " + m[2]
	}
	return 0, "YAML syntax: " + strings.TrimPrefix(s, "yaml: ")
}

func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// NodeDecoder is a value that decodes itself from its YAML node: one that
// may be written in more than one shape, such as a name or a mapping of the
// name and its options. It reports its problems through d.P.
type NodeDecoder interface {
	DecodeNode(d *Decoder, n *yaml.Node, path string)
}

// Decode decodes n into v (addressable), reporting problems under path.
func (d *Decoder) Decode(n *yaml.Node, path string, v reflect.Value) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if IsNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	t := v.Type()
	if t == durationType {
		d.scalar(n, path, func(s string) (string, bool) {
			dur, err := time.ParseDuration(s)
			if err != nil {
				if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
					return "want a duration with a unit, such as 30s or 2m", false
				}
				return "want a duration such as 30s, 1m30s or 500ms", false
			}
			v.SetInt(int64(dur))
			return "", true
		})
		return
	}
	if reflect.PointerTo(t).Implements(nodeDecoderType) && t.Kind() != reflect.Pointer {
		v.Addr().Interface().(NodeDecoder).DecodeNode(d, n, path)
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) && t.Kind() != reflect.Pointer {
		d.scalar(n, path, func(s string) (string, bool) {
			if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				return CleanErr(err, s), false
			}
			return "", true
		})
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		e := reflect.New(t.Elem())
		d.Decode(n, path, e.Elem())
		v.Set(e)
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.P.Add(d.File, n.Line, path, "", "want a list, not %s", KindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.Pos[p] = c.Line
			d.Decode(c, p, s.Index(i))
		}
		v.Set(s)
	case reflect.String:
		d.scalar(n, path, func(s string) (string, bool) { v.SetString(s); return "", true })
	case reflect.Bool:
		d.scalar(n, path, func(s string) (string, bool) {
			switch strings.ToLower(s) {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				return "want true or false", false
			}
			return "", true
		})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.scalar(n, path, func(s string) (string, bool) {
			i, err := strconv.ParseInt(s, 0, t.Bits())
			if err != nil {
				if errors.Is(err, strconv.ErrRange) {
					return fmt.Sprintf("out of range (%d to %d)", int64(-1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1), false
				}
				return "want a whole number", false
			}
			v.SetInt(i)
			return "", true
		})
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.scalar(n, path, func(s string) (string, bool) {
			u, err := strconv.ParseUint(s, 0, t.Bits())
			if err != nil {
				if errors.Is(err, strconv.ErrRange) {
					return fmt.Sprintf("out of range (0 to %d)", uint64(math.MaxUint64)>>(64-t.Bits())), false
				}
				if _, ierr := strconv.ParseInt(s, 0, 64); ierr == nil {
					return "must not be negative", false
				}
				return "want a whole number", false
			}
			v.SetUint(u)
			return "", true
		})
	case reflect.Float32, reflect.Float64:
		d.scalar(n, path, func(s string) (string, bool) {
			f, err := strconv.ParseFloat(s, t.Bits())
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return "want a number", false
			}
			v.SetFloat(f)
			return "", true
		})
	default:
		panic("cutover: cannot decode into " + t.String())
	}
}

// scalar checks that n is a single value and hands it to set, which
// returns an error message when the value does not fit.
func (d *Decoder) scalar(n *yaml.Node, path string, set func(string) (string, bool)) {
	if n.Kind != yaml.ScalarNode {
		d.P.Add(d.File, n.Line, path, "", "want a single value, not %s", KindName(n))
		return
	}
	if msg, ok := set(n.Value); !ok {
		d.P.Add(d.File, n.Line, path, n.Value, "%s", msg)
	}
}

// fieldIndex maps a struct's yaml keys to field indices.
func fieldIndex(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		idx[name] = i
		keys = append(keys, name)
	}
	return idx, keys
}

// Keys walks the pairs of a mapping node, rejecting duplicate and
// non-scalar keys and merge keys, and calls f for each good pair.
func (d *Decoder) Keys(n *yaml.Node, path string, f func(key string, k, val *yaml.Node)) bool {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		d.P.Add(d.File, n.Line, path, "", "want a mapping (key: value), not %s", KindName(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.P.Add(d.File, k.Line, path, "", "a key must be a single value, not %s", KindName(k))
			continue
		}
		if k.Tag == "!!merge" {
			d.P.Add(d.File, k.Line, path, "", "merge keys (<<) are not supported: write the fields out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.P.Add(d.File, k.Line, join(path, k.Value), "", "duplicate key (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f(k.Value, k, val)
	}
	return true
}

func (d *Decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	idx, known := fieldIndex(v.Type())
	d.Keys(n, path, func(key string, k, val *yaml.Node) {
		p := join(path, key)
		i, ok := idx[key]
		if !ok {
			msg := "unknown field"
			if s := suggest(key, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
			}
			d.P.Add(d.File, k.Line, p, "", "%s", msg)
			return
		}
		d.Pos[p] = k.Line
		d.Decode(val, p, v.Field(i))
	})
}

func (d *Decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		panic("cutover: map keys must be strings")
	}
	m := reflect.MakeMap(t)
	d.Keys(n, path, func(key string, k, val *yaml.Node) {
		p := join(path, key)
		d.Pos[p] = k.Line
		e := reflect.New(t.Elem()).Elem()
		d.Decode(val, p, e)
		m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e)
	})
	v.Set(m)
}

// suggest returns the known key closest to key when it is close enough
// to be a typo.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			c := 1
			if ra[i-1] == rb[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
