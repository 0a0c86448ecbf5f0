// Package redact makes URLs safe to log and print: webhook and Prometheus
// URLs may carry a secret in their user-info, query or path.
//
// The rule of URL, applied to the parsed URL; scheme, host and port are
// kept, since they are what an operator needs to find a wrong target:
//
//   - user-info: the whole of it (user name and password) becomes "xxxxx":
//     https://xxxxx@prometheus:9090. A user name alone may be a token.
//   - query: every value becomes "xxxxx", keys are kept (?token=xxxxx,
//     ?a=&b=xxxxx: an empty value stays empty); a part without "=" is a
//     value (?xxxxx), and a key that looks like a secret (below) is
//     replaced too.
//   - fragment: a non-empty one becomes "xxxxx".
//   - path: a segment becomes "xxxxx" when it looks like a secret, that is
//     when, unescaped, it has 32 or more characters, or 16 or more with at
//     least one ASCII letter and one ASCII digit; and every segment after
//     a webhook marker does, the markers themselves excepted. The markers
//     (any case): hook, hooks, webhook, webhooks, webhookb2 (Microsoft
//     Teams), incomingwebhook (Teams), and services on hooks.slack.com and
//     hooks.slack-gov.com (Slack). So
//     https://hooks.slack.com/services/T000/B000/XXXX becomes
//     https://hooks.slack.com/services/xxxxx/xxxxx/xxxxx and
//     https://discord.com/api/webhooks/123/abc becomes
//     https://discord.com/api/webhooks/xxxxx/xxxxx.
//   - the opaque part of a URL without "//" (mailto:x, http:user:pw@host)
//     becomes "xxxxx", unless it is a number: "prometheus:9090", a host and
//     port without a scheme, is shown as it is.
//   - a string that does not parse as a URL is not echoed at all: it
//     becomes Unparsable.
//
// The rule errs towards hiding: a long path segment with digits that is
// no secret (/prometheus-k8s-eu1-prod) is hidden too.
package redact

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Mask replaces each secret part.
const Mask = "xxxxx"

// Unparsable stands for a URL that does not parse: which of its parts is
// a secret is not known, so none of it is shown.
const Unparsable = "[unparsable URL]"

// markers are the path segments after which every segment is a secret, on
// any host (compared in lower case).
var markers = []string{"hook", "hooks", "webhook", "webhooks", "webhookb2", "incomingwebhook"}

// hostMarkers are markers on one host only.
var hostMarkers = map[string][]string{
	"hooks.slack.com":     {"services"},
	"hooks.slack-gov.com": {"services"},
}

// URL returns s with its secrets replaced (see the package's rule); "" stays
// "". Redacting a redacted URL changes nothing.
func URL(s string) string {
	if s == "" || s == Unparsable {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Unparsable
	}
	r := *u
	if r.User != nil {
		r.User = url.User(Mask)
	}
	if r.Opaque != "" && strings.Trim(r.Opaque, "0123456789") != "" {
		r.Opaque = Mask
	} else if p := u.EscapedPath(); p != "" {
		raw := path(p, hostMarkers[strings.ToLower(u.Hostname())])
		unescaped, err := url.PathUnescape(raw)
		if err != nil { // cannot happen: raw is made of u's own escaped segments
			return Unparsable
		}
		r.Path, r.RawPath = unescaped, raw
	}
	r.RawQuery = query(u.RawQuery)
	if u.Fragment != "" {
		r.Fragment, r.RawFragment = Mask, ""
	}
	return r.String()
}

// path redacts the segments of an escaped path.
func path(p string, extra []string) string {
	segs := strings.Split(p, "/")
	after := false
	for i, seg := range segs {
		plain, err := url.PathUnescape(seg)
		if err != nil {
			plain = seg
		}
		lower := strings.ToLower(plain)
		switch {
		case slices.Contains(markers, lower) || slices.Contains(extra, lower):
			after = true
		case seg == "":
		case after || secret(plain):
			segs[i] = Mask
		}
	}
	return strings.Join(segs, "/")
}

// query redacts a raw query: every value, and keys that look like secrets.
func query(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	for i, part := range parts {
		key, value, ok := strings.Cut(part, "=")
		switch {
		case part == "":
			continue
		case !ok: // no key: the whole part is a value
			parts[i] = Mask
			continue
		}
		if plain, err := url.QueryUnescape(key); err != nil || secret(plain) {
			key = Mask
		}
		if value != "" {
			value = Mask
		}
		parts[i] = key + "=" + value
	}
	return strings.Join(parts, "&")
}

// secret reports whether a path segment or query key looks like a secret:
// 32 or more characters, or 16 or more with an ASCII letter and a digit.
func secret(s string) bool {
	n := utf8.RuneCountInString(s)
	if n >= 32 {
		return true
	}
	if n < 16 {
		return false
	}
	letter := strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0
	return letter && strings.ContainsAny(s, "0123456789")
}

// Error returns err's text with every URL it may carry redacted: rawURL
// and the URL of each *url.Error in err's chain (net/http's errors read
// `Post "https://…": dial tcp …`, url.Parse's `parse "…": …`), both as
// written and as %q quotes them. "" for a nil err.
func Error(err error, rawURL string) string {
	if err == nil {
		return ""
	}
	urls := urlsOf(err, nil)
	if rawURL != "" {
		urls = append(urls, rawURL)
		if u, perr := url.Parse(rawURL); perr == nil {
			urls = append(urls, u.String(), u.Redacted())
		}
	}
	// In one pass (a replacement is not looked at again), the longest
	// first: the base URL of a server is a prefix of the URLs asked.
	slices.SortFunc(urls, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	var pairs []string
	for _, u := range slices.Compact(urls) {
		if r := URL(u); u != "" && r != u {
			pairs = append(pairs, strconv.Quote(u), strconv.Quote(r), u, r)
		}
	}
	if len(pairs) == 0 {
		return err.Error()
	}
	return strings.NewReplacer(pairs...).Replace(err.Error())
}

// urlsOf appends the URLs of the *url.Error values in err's chain.
func urlsOf(err error, urls []string) []string {
	for err != nil {
		if ue, ok := err.(*url.Error); ok {
			urls = append(urls, ue.URL)
		}
		switch x := err.(type) {
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				urls = urlsOf(e, urls)
			}
			return urls
		default:
			return urls
		}
	}
	return urls
}

// Wrap returns err with the text of Error(err, rawURL); it unwraps to err,
// so errors.Is and errors.As see what err holds. Print the returned error,
// never what it unwraps to. nil for a nil err.
func Wrap(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	return &redacted{text: Error(err, rawURL), err: err}
}

type redacted struct {
	text string
	err  error
}

func (e *redacted) Error() string { return e.text }
func (e *redacted) Unwrap() error { return e.err }
