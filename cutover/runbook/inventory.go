package runbook

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/cutover/runbook/strict"
)

// ProbeKind says how a VM's health is checked.
type ProbeKind string

// Probe kinds.
const (
	ProbeNone  ProbeKind = ""      // not probed
	ProbeICMP  ProbeKind = "icmp"  // ICMP echo
	ProbeTCP   ProbeKind = "tcp"   // TCP connect to Port
	ProbeHTTP  ProbeKind = "http"  // HTTP GET of Path on Port, 2xx/3xx is healthy
	ProbeHTTPS ProbeKind = "https" // as http, over TLS
)

// Probe is how a VM's health is checked, written in the inventory as "",
// "icmp", "tcp:PORT", "http:PORT/PATH" or "https:PORT/PATH".
type Probe struct {
	Kind ProbeKind
	Port uint16 // tcp, http, https
	Path string // http, https; starts with "/"
}

// ParseProbe parses the inventory's probe syntax. "http:80" is read as
// "http:80/".
func ParseProbe(s string) (Probe, error) {
	if s == "" {
		return Probe{}, nil
	}
	kind, rest, hasPort := strings.Cut(s, ":")
	switch ProbeKind(strings.ToLower(kind)) {
	case ProbeICMP:
		if hasPort {
			return Probe{}, fmt.Errorf("icmp takes no port: write icmp")
		}
		return Probe{Kind: ProbeICMP}, nil
	case ProbeTCP:
		if !hasPort {
			return Probe{}, fmt.Errorf("tcp needs a port: write tcp:PORT")
		}
		port, err := parsePort(rest)
		if err != nil {
			return Probe{}, err
		}
		return Probe{Kind: ProbeTCP, Port: port}, nil
	case ProbeHTTP, ProbeHTTPS:
		k := ProbeKind(strings.ToLower(kind))
		if !hasPort {
			return Probe{}, fmt.Errorf("%s needs a port: write %s:PORT/PATH", k, k)
		}
		portText, path, hasPath := strings.Cut(rest, "/")
		port, err := parsePort(portText)
		if err != nil {
			return Probe{}, err
		}
		path = "/" + path
		if !hasPath {
			path = "/"
		}
		for _, r := range path {
			if r <= ' ' || r == 0x7f || r == '#' {
				return Probe{}, fmt.Errorf("path %q: no spaces, control characters or #", path)
			}
		}
		return Probe{Kind: k, Port: port, Path: path}, nil
	}
	return Probe{}, fmt.Errorf("unknown probe: want empty, icmp, tcp:PORT, http:PORT/PATH or https:PORT/PATH")
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("port %q: want 1-65535", s)
	}
	return uint16(p), nil
}

// String returns the probe in the inventory's syntax.
func (p Probe) String() string {
	switch p.Kind {
	case ProbeNone:
		return ""
	case ProbeICMP:
		return "icmp"
	case ProbeTCP:
		return fmt.Sprintf("tcp:%d", p.Port)
	default:
		return fmt.Sprintf("%s:%d%s", p.Kind, p.Port, p.Path)
	}
}

// MarshalText writes the probe in the inventory's syntax.
func (p Probe) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the inventory's syntax.
func (p *Probe) UnmarshalText(b []byte) error {
	v, err := ParseProbe(string(b))
	*p = v
	return err
}

// VM is one virtual server: a name and every address it has.
type VM struct {
	Name     string
	Prefixes []netip.Prefix // canonical (masked), sorted; at least one
	Tenant   string
	Tier     int // 1 (most critical) to 3
	Probe    Probe
	Line     int // line of the VM's first row in the inventory file
}

// Inventory is every VM a runbook moves.
type Inventory struct {
	File   string // path it was read from
	Format string // "csv", "yaml" or "json"
	Digest string // SHA-256 of the file, hex
	VMs    []*VM  // sorted by tenant, then name

	rows []addrRow // every address with its line, in file order

	// When a runbook's max_prefixes stops the checks early (see Load),
	// truncated is set, total counts every address row of the file and
	// checkedTo is the line of the last row checked.
	truncated        bool
	total, checkedTo int
}

// addrRow is one address of a VM and where it was written.
type addrRow struct {
	prefix netip.Prefix
	vm     *VM
	line   int
}

// Prefixes returns the number of prefixes of all VMs.
func (inv *Inventory) Prefixes() int { return len(inv.rows) }

// Families reports whether the inventory has IPv4 and IPv6 prefixes.
func (inv *Inventory) Families() (v4, v6 bool) {
	for _, r := range inv.rows {
		if r.prefix.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

// Tenants returns the sorted tenant names.
func (inv *Inventory) Tenants() []string {
	var ts []string
	for _, vm := range inv.VMs {
		if len(ts) == 0 || ts[len(ts)-1] != vm.Tenant {
			ts = append(ts, vm.Tenant)
		}
	}
	return ts
}

// LoadInventory reads an inventory file; the format follows the file's
// extension: .csv, .yaml/.yml or .json. The file must be a regular file of
// at most MaxInventorySize bytes (MaxInventoryYAMLSize for YAML and JSON).
// Errors are ValidationErrors.
func LoadInventory(path string) (*Inventory, []Warning, error) {
	var p problems
	f, err := openRegular(path, inventoryLimit(path))
	if err != nil {
		p.Add(path, 0, "", "", "cannot read the inventory: %s", fileErr(err))
		return nil, nil, p.Err()
	}
	defer f.Close()
	inv, err := readInventory(path, f, 0, &p)
	if err != nil {
		p.Add(path, 0, "", "", "cannot read the inventory: %s", fileErr(err))
	}
	if err := p.Err(); err != nil {
		return nil, p.Warnings(), err
	}
	return inv, p.Warnings(), nil
}

// fileErr shortens an *os.PathError to its cause; the path is shown anyway.
func fileErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ParseInventory parses an inventory; name is used for messages and its
// extension selects the format. The size caps of LoadInventory apply.
// Errors are ValidationErrors.
func ParseInventory(name string, data []byte) (*Inventory, []Warning, error) {
	var p problems
	inv := parseInventory(name, data, 0, &p)
	if err := p.Err(); err != nil {
		return nil, p.Warnings(), err
	}
	return inv, p.Warnings(), nil
}

// parseInventory is readInventory on contents in memory.
func parseInventory(name string, data []byte, limit int, p *problems) *Inventory {
	inv, err := readInventory(name, bytes.NewReader(data), limit, p)
	if err != nil {
		p.Add(name, 0, "", "", "%s", err) // only the size cap can fail
		return nil
	}
	return inv
}

// readInventory reads and checks an inventory from r, which it reads only
// up to the size cap. It checks the first limit address rows (all when
// limit is 0) and only counts the rest, setting inv.truncated. The VMs
// whose rows have errors are left out and the errors are in p; a failure
// to read r is returned.
func readInventory(name string, r io.Reader, limit int, p *problems) (*Inventory, error) {
	format := ""
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".csv":
		format = "csv"
	case ".yaml", ".yml":
		format = "yaml"
	case ".json":
		format = "json"
	default:
		p.Add(name, 0, "", ext, "unknown inventory format: want a .csv, .yaml, .yml or .json file")
		return nil, nil
	}
	inv := &Inventory{File: name, Format: format}
	sum := sha256.New()
	digest := &switchWriter{w: sum}
	src := io.TeeReader(&capReader{r: r, lim: inventoryLimit(name)}, digest)
	var rows []rawRow
	if format == "csv" {
		var err error
		if rows, err = parseCSV(inv, src, limit, digest, p); err != nil {
			return nil, err
		}
	} else {
		data, err := io.ReadAll(src)
		if err != nil {
			return nil, err
		}
		if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); format == "json" && len(t) > 0 && t[0] != '[' {
			p.Add(name, 1, "", "", "want a JSON array of VMs: [{\"name\": ..., \"address\": ...}, ...]")
		} else {
			rows = parseInventoryYAML(inv, data, limit, p)
		}
	}
	inv.Digest = hex.EncodeToString(sum.Sum(nil))
	if p.Len() == 0 || len(rows) > 0 {
		buildInventory(inv, rows, p)
	}
	return inv, nil
}

// rawRow is one row as written, before checks.
type rawRow struct {
	line                               int
	name, address, tenant, tier, probe string
}

var csvColumns = []string{"name", "address", "tenant", "tier", "probe"}

// parseCSV reads spreadsheet exports: UTF-8 with or without BOM, LF or
// CRLF, comma, semicolon (Excel with a European locale) or tab separated,
// columns in any order and matched case-insensitively, extra columns
// ignored with a warning, blank rows and #-comment lines skipped.
//
// It reads in as a stream and keeps only the rows it checks: the first
// limit (all when limit is 0); after those it counts the rows and stops
// feeding the digest. It returns an error only when in cannot be read.
func parseCSV(inv *Inventory, in io.Reader, limit int, digest *switchWriter, p *problems) ([]rawRow, error) {
	file := inv.File
	br := bufio.NewReaderSize(in, 64<<10)
	head, err := br.Peek(len(utf8BOM))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if hasUTF16BOM(head) {
		p.Add(file, 0, "", "", "the file is UTF-16: save it as CSV UTF-8")
		return nil, nil
	}
	if bytes.HasPrefix(head, utf8BOM) {
		if _, err := br.Discard(len(utf8BOM)); err != nil {
			return nil, err
		}
	}
	comma, sniffed, err := sniffComma(br)
	if err != nil {
		return nil, err
	}
	// csv.NewReader reads this bufio.Reader as it is, so that after the
	// last row checked the rest can be counted from it.
	rest := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(sniffed), br), 64<<10)
	r := csv.NewReader(rest)
	r.Comma = comma
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = true

	// read returns the next record; ok is false at the end, after a
	// syntax error (reported) and when in fails (rerr).
	var (
		rerr error
		pe   *csv.ParseError
	)
	read := func() (rec []string, ok bool) {
		rec, err := r.Read()
		switch {
		case err == nil:
			return rec, true
		case errors.Is(err, io.EOF):
		case errors.As(err, &pe):
			csvError(file, err, p)
		default:
			rerr = err
		}
		return nil, false
	}

	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		p.Add(file, 0, "", "", "the inventory has no VMs (the file is empty)")
		return nil, nil
	}
	if err != nil && !errors.As(err, &pe) {
		return nil, err
	}
	if err != nil {
		csvError(file, err, p)
		return nil, nil
	}
	header = slices.Clone(header) // r reuses its record
	hline, _ := r.FieldPos(0)
	col := map[string]int{}
	var extra []string
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(csvColumns, h) {
			if h == "" {
				h = "(unnamed)"
			}
			extra = append(extra, h)
			continue
		}
		if _, dup := col[h]; dup {
			p.Add(file, hline, h, "", "column appears twice in the header")
			continue
		}
		col[h] = i
	}
	var missing []string
	for _, c := range csvColumns[:4] {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) == 4 {
		p.Add(file, hline, "", strings.Join(header, string(r.Comma)),
			"no header: the first row must be name,address,tenant,tier,probe")
		return nil, nil
	}
	if len(missing) > 0 {
		p.Add(file, hline, "", strings.Join(header, string(r.Comma)),
			"header lacks column(s) %s: want name,address,tenant,tier,probe", strings.Join(missing, ", "))
		return nil, nil
	}
	if len(extra) > 0 {
		p.Warn(file, hline, "", "ignoring extra column(s): %s", strings.Join(extra, ", "))
	}
	get := func(rec []string, c string) string {
		i, ok := col[c]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var rows []rawRow
	for {
		rec, ok := read()
		if !ok {
			break
		}
		line, _ := r.FieldPos(0)
		if blankRecord(rec) {
			continue
		}
		inv.total++
		if limit > 0 && inv.total > limit {
			// Enough checked: count the rest.
			inv.truncated = true
			digest.w = nil
			n, err := countCSVRows(rest, comma)
			if err != nil {
				return nil, err
			}
			inv.total += n
			break
		}
		inv.checkedTo = line
		if len(rec) > len(header) && strings.TrimSpace(strings.Join(rec[len(header):], "")) != "" {
			p.Add(file, line, "", "", "row has %d fields, the header %d (an unquoted %q in a value?)", len(rec), len(header), r.Comma)
			continue
		}
		rows = append(rows, rawRow{line: line, name: get(rec, "name"), address: get(rec, "address"),
			tenant: get(rec, "tenant"), tier: get(rec, "tier"), probe: get(rec, "probe")})
	}
	if rerr != nil {
		return nil, rerr
	}
	return rows, nil
}

// countCSVRows counts the records left in br the way parseCSV reads them,
// without keeping them: quoted fields may span lines, lines starting with
// # between records and records of blank fields are skipped. Records
// with broken quoting count as one.
func countCSVRows(br *bufio.Reader, comma rune) (int, error) {
	var (
		n          int
		inRecord   bool // a record has begun
		content    bool // ... and has a field that is not blank
		lineStart  = true
		comment    bool   // in a comment line
		fieldStart = true // leading spaces of a field are skipped
		quoted     bool   // in a quoted field
		quote      bool   // just saw a " in a quoted field: "" or the end
	)
	blank := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }
	for {
		chunk, err := br.ReadSlice('\n')
		for _, c := range chunk {
			if comment {
				if c == '\n' {
					comment, lineStart = false, true
				}
				continue
			}
			if lineStart && !quoted {
				lineStart = false
				if !inRecord {
					if c == '#' {
						comment = true
						continue
					}
					if c == '\n' {
						lineStart = true
						continue
					}
					inRecord, content, fieldStart = true, false, true
				}
			}
			if quoted {
				if quote {
					quote = false
					if c == '"' {
						content = true // "" is a quote
						continue
					}
					quoted = false // the end of the field; c is after it
				} else {
					switch {
					case c == '"':
						quote = true
					case c == '\n':
						lineStart = true
					case !blank(c):
						content = true
					}
					continue
				}
			}
			switch {
			case c == '\n':
				if content {
					n++
				}
				inRecord, lineStart, fieldStart = false, true, true
			case rune(c) == comma:
				fieldStart = true
			case fieldStart && blank(c):
			case fieldStart && c == '"':
				quoted, fieldStart = true, false
			default:
				fieldStart = false
				if !blank(c) {
					content = true
				}
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if inRecord && content {
				n++
			}
			return n, nil
		default:
			return n, err
		}
	}
}

// blankRecord reports whether every field of rec is blank.
func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// sniffComma picks the separator from the header line: comma unless the
// header has none and has semicolons or tabs. It reads br up to and
// including the header line and returns what it read, to be read again.
func sniffComma(br *bufio.Reader) (comma rune, read []byte, err error) {
	for {
		start := len(read)
		var chunk []byte
		for {
			chunk, err = br.ReadSlice('\n')
			read = append(read, chunk...)
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, err
		}
		t := bytes.TrimSpace(read[start:])
		if len(t) > 0 && t[0] != '#' {
			switch {
			case bytes.ContainsRune(t, ','):
				return ',', read, nil
			case bytes.ContainsRune(t, ';'):
				return ';', read, nil
			case bytes.ContainsRune(t, '\t'):
				return '\t', read, nil
			}
			return ',', read, nil
		}
		if err != nil {
			return ',', read, nil // io.EOF
		}
	}
}

func csvError(file string, err error, p *problems) {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		p.Add(file, pe.Line, "", "", "CSV syntax: %v", pe.Err)
		return
	}
	p.Add(file, 0, "", "", "CSV: %v", err)
}

var inventoryKeys = []string{"name", "address", "addresses", "tenant", "tier", "probe"}

// parseInventoryYAML reads a YAML or JSON list of VMs with the CSV's
// fields; "addresses" (a list) may replace "address". Unknown fields are
// ignored with one warning per field name. Like parseCSV it keeps the
// first limit rows (all when limit is 0) and counts the rest.
func parseInventoryYAML(inv *Inventory, data []byte, limit int, p *problems) []rawRow {
	file := inv.File
	root := strict.ParseYAML(file, bytes.TrimPrefix(data, utf8BOM), p)
	if root == nil {
		return nil
	}
	if root.Kind != yaml.SequenceNode {
		p.Add(file, root.Line, "", "", "want a list of VMs (- name: ... address: ...), not %s", strict.KindName(root))
		return nil
	}
	d := &strict.Decoder{File: file, P: p, Pos: strict.Positions{}}
	unknown := map[string]bool{}
	var rows []rawRow
	emit := func(r rawRow) {
		inv.total++
		if limit > 0 && inv.total > limit {
			return
		}
		inv.checkedTo = r.line
		rows = append(rows, r)
	}
	for i, item := range root.Content {
		if limit > 0 && inv.total >= limit {
			inv.total += countYAMLRows(item) // enough checked
			continue
		}
		path := fmt.Sprintf("[%d]", i)
		r := rawRow{line: item.Line}
		var addrs []*yaml.Node
		var haveAddr, haveAddrs, broken bool
		d.Keys(item, path, func(key string, k, v *yaml.Node) {
			if !slices.Contains(inventoryKeys, key) {
				if !unknown[key] {
					unknown[key] = true
					p.Warn(file, k.Line, key, "ignoring unknown field")
				}
				return
			}
			if key == "addresses" {
				haveAddrs = true
				if v.Kind != yaml.SequenceNode {
					p.Add(file, v.Line, key, "", "want a list of addresses, not %s", strict.KindName(v))
					broken = true
					return
				}
				addrs = v.Content
				return
			}
			var s string
			if !strict.IsNull(v) {
				if v.Kind != yaml.ScalarNode {
					p.Add(file, v.Line, key, "", "want a single value, not %s", strict.KindName(v))
					broken = true
					return
				}
				s = strings.TrimSpace(v.Value)
			}
			switch key {
			case "name":
				r.name = s
			case "address":
				haveAddr = true
				r.address = s
			case "tenant":
				r.tenant = s
			case "tier":
				r.tier = s
			case "probe":
				r.probe = s
			}
		})
		switch {
		case broken:
			continue // reported; checking the rest would only add noise
		case haveAddr && haveAddrs:
			p.Add(file, item.Line, "addresses", "", "give address or addresses, not both")
		case haveAddrs:
			if len(addrs) == 0 {
				p.Add(file, item.Line, "addresses", "", "empty list: a VM needs at least one address")
			}
			for _, a := range addrs {
				ra := r
				ra.line = a.Line
				if a.Kind != yaml.ScalarNode {
					p.Add(file, a.Line, "addresses", "", "want an address, not %s", strict.KindName(a))
					continue
				}
				ra.address = strings.TrimSpace(a.Value)
				emit(ra)
			}
			continue
		}
		if item.Kind == yaml.MappingNode {
			emit(r)
		}
	}
	inv.truncated = limit > 0 && inv.total > limit
	return rows
}

// countYAMLRows returns the number of address rows of an inventory item
// without checking it: the length of its addresses list, or one.
func countYAMLRows(item *yaml.Node) int {
	n := item
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "addresses" && v.Kind == yaml.SequenceNode {
			return len(v.Content)
		}
	}
	if item.Kind != yaml.MappingNode {
		return 0 // an alias: see parseInventoryYAML
	}
	return 1
}

// buildInventory checks every row and groups the rows into VMs.
func buildInventory(inv *Inventory, rows []rawRow, p *problems) {
	file := inv.File
	byName := make(map[string]*VM, len(rows))
	firstAt := make(map[netip.Prefix]int, len(rows)) // prefix -> index in inv.rows
	inv.rows = make([]addrRow, 0, len(rows))
	for _, r := range rows {
		ok := true
		if msg := checkName(r.name); msg != "" {
			p.Add(file, r.line, "name", r.name, "%s", msg)
			ok = false
		}
		pfx, msg := parseAddress(r.address)
		if msg != "" {
			p.Add(file, r.line, "address", r.address, "%s", msg)
			ok = false
		}
		if msg := CheckTenant(r.tenant); msg != "" {
			p.Add(file, r.line, "tenant", r.tenant, "%s", msg)
			ok = false
		}
		tier, err := strconv.Atoi(r.tier)
		if r.tier == "" {
			p.Add(file, r.line, "tier", "", "required: 1, 2 or 3 (1 = most critical)")
			ok = false
		} else if err != nil || tier < 1 || tier > 3 {
			p.Add(file, r.line, "tier", r.tier, "want 1, 2 or 3 (1 = most critical)")
			ok = false
		}
		probe, err := ParseProbe(r.probe)
		if err != nil {
			p.Add(file, r.line, "probe", r.probe, "%s", strict.CleanErr(err, r.probe))
			ok = false
		}
		if !ok {
			continue
		}
		vm := byName[r.name]
		if vm == nil {
			vm = &VM{Name: r.name, Tenant: r.tenant, Tier: tier, Probe: probe, Line: r.line}
			byName[r.name] = vm
		} else {
			same := true
			if vm.Tenant != r.tenant {
				p.Add(file, r.line, "tenant", r.tenant, "vm %q has tenant %q on line %d", r.name, vm.Tenant, vm.Line)
				same = false
			}
			if vm.Tier != tier {
				p.Add(file, r.line, "tier", r.tier, "vm %q has tier %d on line %d", r.name, vm.Tier, vm.Line)
				same = false
			}
			if vm.Probe != probe {
				p.Add(file, r.line, "probe", r.probe, "vm %q has probe %q on line %d", r.name, vm.Probe, vm.Line)
				same = false
			}
			if !same {
				continue
			}
		}
		if i, dup := firstAt[pfx]; dup {
			other := inv.rows[i]
			if other.vm == vm {
				p.Add(file, r.line, "address", r.address, "duplicate address of vm %q (also on line %d)", vm.Name, other.line)
			} else {
				p.Add(file, r.line, "address", r.address, "address already belongs to vm %q (line %d)", other.vm.Name, other.line)
			}
			continue
		}
		firstAt[pfx] = len(inv.rows)
		inv.rows = append(inv.rows, addrRow{prefix: pfx, vm: vm, line: r.line})
		vm.Prefixes = append(vm.Prefixes, pfx)
	}
	checkOverlaps(inv, p)
	inv.VMs = make([]*VM, 0, len(byName))
	for _, vm := range byName {
		if len(vm.Prefixes) == 0 {
			continue // every row of it had an error, reported above
		}
		slices.SortFunc(vm.Prefixes, netip.Prefix.Compare)
		inv.VMs = append(inv.VMs, vm)
	}
	slices.SortFunc(inv.VMs, CompareVMs)
	if len(rows) == 0 && p.Len() == 0 {
		p.Add(file, 0, "", "", "the inventory has no VMs")
	}
}

// CompareVMs orders VMs by tenant, then name: the order of a batch.
func CompareVMs(a, b *VM) int {
	if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// checkOverlaps finds prefixes that contain others with one sorted sweep
// (O(n log n), so 100,000 VMs cost milliseconds). Sorted by family,
// address and length, a prefix overlaps an earlier one exactly when an
// earlier one that is still "open" contains its address; the open ones
// form a stack of nested prefixes.
func checkOverlaps(inv *Inventory, p *problems) {
	order := make([]int, len(inv.rows))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return inv.rows[a].prefix.Compare(inv.rows[b].prefix) })
	var stack []int
	for _, i := range order {
		cur := inv.rows[i]
		for len(stack) > 0 {
			top := inv.rows[stack[len(stack)-1]].prefix
			if top.Addr().BitLen() == cur.prefix.Addr().BitLen() && top.Contains(cur.prefix.Addr()) {
				break
			}
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 {
			// Report on the row written later, naming the earlier one.
			a, b := inv.rows[stack[len(stack)-1]], cur
			if a.line > b.line {
				a, b = b, a
			}
			p.Add(inv.File, b.line, "address", b.prefix.String(), "overlaps %s of vm %q (line %d)", a.prefix, a.vm.Name, a.line)
		}
		stack = append(stack, i)
	}
}

// parseAddress parses an inventory address: a host address (made /32 or
// /128) or a prefix. It returns a message when the address is unusable.
func parseAddress(s string) (netip.Prefix, string) {
	if s == "" {
		return netip.Prefix{}, "required: an IPv4 or IPv6 address or prefix"
	}
	var pfx netip.Prefix
	if strings.Contains(s, "/") {
		pp, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, "not a prefix: " + strict.CleanErr(err, s)
		}
		if pp.Addr().Is4In6() {
			return netip.Prefix{}, "IPv4-mapped IPv6 prefix: write the IPv4 prefix"
		}
		if m := pp.Masked(); m != pp {
			return netip.Prefix{}, fmt.Sprintf("host bits set: the prefix is %s, the host %s/%d", m, pp.Addr(), pp.Addr().BitLen())
		}
		pfx = pp
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			msg := strings.TrimSuffix(strict.CleanErr(err, s), " (at "+strconv.Quote(s)+")")
			return netip.Prefix{}, "not an IP address: " + msg
		}
		if a.Zone() != "" {
			return netip.Prefix{}, "zoned address (%" + a.Zone() + ") is not routable"
		}
		if a.Is4In6() {
			return netip.Prefix{}, "IPv4-mapped IPv6 address: write it as " + a.Unmap().String()
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	a := pfx.Addr()
	switch {
	case pfx.Bits() == 0:
		return netip.Prefix{}, "a default route is never announced"
	case a.IsUnspecified() && pfx.IsSingleIP():
		return netip.Prefix{}, "unspecified address"
	case a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return netip.Prefix{}, "not a routable unicast address"
	}
	return pfx, ""
}

// checkName returns a message when s is not a usable VM name: one to 128
// printable characters without spaces.
func checkName(s string) string {
	switch {
	case s == "":
		return "required"
	case !utf8.ValidString(s):
		return "not valid UTF-8 (save the file as UTF-8)"
	case utf8.RuneCountInString(s) > 128:
		return "longer than 128 characters"
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "no spaces or control characters"
		}
	}
	return ""
}

// CheckTenant returns a message when s is not a usable tenant name: one to
// 64 letters, digits, spaces, '-', '_' or '.'; "" when it is.
func CheckTenant(s string) string {
	switch {
	case s == "":
		return "required"
	case !utf8.ValidString(s):
		return "not valid UTF-8 (save the file as UTF-8)"
	case utf8.RuneCountInString(s) > 64:
		return "longer than 64 characters"
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune(" -_.", r) {
			return "use letters, digits, spaces, '-', '_' or '.'"
		}
	}
	return ""
}
