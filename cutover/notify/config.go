package notify

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/cutover/runbook"
	"github.com/cutover/cutover/cutover/runbook/strict"
	"github.com/cutover/cutover/internal/redact"
)

// AnyTenant is the route key of every tenant without a route of its own.
const AnyTenant = "*"

// maxConfigSize bounds the routing file read: a few lines per tenant.
const maxConfigSize = 1 << 20

// config is the routing file as written.
type config struct {
	Tenants map[string]routeConfig `yaml:"tenants"`
}

// routeConfig is where one tenant's notices go: a webhook, a file or both.
type routeConfig struct {
	Webhook string `yaml:"webhook"`
	File    string `yaml:"file"`
}

// readConfig reads the routing file at path: a regular file of at most
// maxConfigSize bytes.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d KiB: is it the right file?", path, maxConfigSize>>10)
	}
	return data, nil
}

// parseConfig decodes and checks the routing file's content strictly: an
// unknown key, a tenant name the inventory could not hold, a route to
// nowhere, a webhook that is no http(s) URL or a file that is no absolute
// path is an error with the file's name and line. It opens nothing.
// Webhook URLs are shown redacted: they often carry a secret.
func parseConfig(file string, data []byte) (config, strict.Positions, error) {
	var p strict.Problems
	root := strict.ParseYAML(file, data, &p)
	if root == nil {
		return config{}, nil, p.Err()
	}
	if root.Kind != yaml.MappingNode {
		p.Add(file, root.Line, "", "", "want a mapping (tenants: ...), not %s", strict.KindName(root))
		return config{}, nil, p.Err()
	}
	var c config
	d := &strict.Decoder{File: file, P: &p, Pos: strict.Positions{}}
	d.Decode(root, "", reflect.ValueOf(&c).Elem())
	if p.Len() > 0 {
		return config{}, nil, p.Err()
	}
	if len(c.Tenants) == 0 {
		p.Add(file, d.Pos.Line("tenants"), "tenants", "", `required: a route (webhook, file or both) per tenant, or "*" for every tenant`)
	}
	for _, t := range slices.Sorted(maps.Keys(c.Tenants)) {
		r := c.Tenants[t]
		path := "tenants." + t
		if msg := checkTenant(t); msg != "" {
			p.Add(file, d.Pos.Line(path), path, t, "%s", msg)
		}
		if r.Webhook == "" && r.File == "" {
			p.Add(file, d.Pos.Line(path), path, "", "want a webhook, a file or both")
		}
		if r.Webhook != "" {
			if msg := checkWebhook(r.Webhook); msg != "" {
				p.Add(file, d.Pos.Line(path+".webhook"), path+".webhook", redact.URL(r.Webhook), "%s", msg)
			}
		}
		if r.File != "" && !filepath.IsAbs(r.File) {
			p.Add(file, d.Pos.Line(path+".file"), path+".file", r.File, "want an absolute path")
		}
	}
	if err := p.Err(); err != nil {
		return config{}, nil, err
	}
	return c, d.Pos, nil
}

// checkTenant returns a message when s is neither AnyTenant nor a name the
// inventory may give a tenant (runbook.CheckTenant).
func checkTenant(s string) string {
	if s == AnyTenant {
		return ""
	}
	if msg := runbook.CheckTenant(s); msg != "" {
		return "tenant name: " + msg + ` ("*" routes every other tenant)`
	}
	return ""
}

// checkWebhook returns a message when raw is not an http or https URL
// with a host.
func checkWebhook(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "want an http or https URL"
	case u.Host == "":
		return "want a URL with a host"
	}
	return ""
}

// checkFiles opens (and creates) each file of c for appending, so that a
// path the daemon cannot write is an error when it starts, not a lost
// notice in the night.
func checkFiles(file string, c config, pos strict.Positions) error {
	var p strict.Problems
	for _, t := range slices.Sorted(maps.Keys(c.Tenants)) {
		path := c.Tenants[t].File
		if path == "" {
			continue
		}
		f, err := openAppend(path)
		if err != nil {
			field := "tenants." + t + ".file"
			p.Add(file, pos.Line(field), field, path, "cannot append to it: %s", fileErr(err))
			continue
		}
		if err := f.Close(); err != nil {
			field := "tenants." + t + ".file"
			p.Add(file, pos.Line(field), field, path, "cannot append to it: %s", fileErr(err))
		}
	}
	return p.Err()
}

// fileErr is err without the path an *os.PathError repeats, and says
// what a refused symbolic link means.
func fileErr(err error) string {
	if errors.Is(err, syscall.ELOOP) {
		return "it is a symbolic link: name the file itself"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
