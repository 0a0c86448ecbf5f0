package gobgp

import (
	"fmt"
	"slices"
	"strings"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/rs/zerolog"
)

// logger adapts zerolog to GoBGP's logger. GoBGP logs one debug line per
// UPDATE it sends, and its info lines are about its own configuration, so
// every level moves one step down: GoBGP debug becomes trace, info becomes
// debug. Peer state changes are logged by the speaker itself at info.
// GoBGP's fields get keys of ours, each once per line (see fieldKey).
type logger struct{ log zerolog.Logger }

var _ gobgplog.Logger = logger{}

func (l logger) Panic(msg string, f gobgplog.Fields) {
	l.event(zerolog.PanicLevel, msg, f)
	panic(msg)
}

// Fatal logs at fatal level but does not exit: GoBGP calls it only when its
// gRPC listener fails to open, and New then fails to connect to it and
// returns the error.
func (l logger) Fatal(msg string, f gobgplog.Fields) { l.event(zerolog.FatalLevel, msg, f) }
func (l logger) Error(msg string, f gobgplog.Fields) { l.event(zerolog.ErrorLevel, msg, f) }
func (l logger) Warn(msg string, f gobgplog.Fields) {
	switch {
	case msg == expectedWithdrawWarning:
		l.event(zerolog.TraceLevel, msg, f)
	case msg == "sent notification" && f["Code"] == uint8(6) && f["Subcode"] == uint8(4):
		// Cease/Administrative Reset: Close ending a session on purpose;
		// the speaker logs that itself.
		l.event(zerolog.DebugLevel, msg, f)
	default:
		l.event(zerolog.WarnLevel, msg, f)
	}
}

// expectedWithdrawWarning is what GoBGP warns for every path its import
// policy rejects (it withdraws a path that never got in): with the
// speaker's reject-all import policy that is every path an observe peer
// mirrors, tens of thousands per batch, so it is logged at trace level.
const expectedWithdrawWarning = "No matching path for withdraw found, may be path was not installed into table"

func (l logger) Info(msg string, f gobgplog.Fields)  { l.event(zerolog.DebugLevel, msg, f) }
func (l logger) Debug(msg string, f gobgplog.Fields) { l.event(zerolog.TraceLevel, msg, f) }

// SetLevel is ignored: the level comes from the zerolog logger.
func (l logger) SetLevel(gobgplog.LogLevel) {}

// GetLevel tells GoBGP which messages would be written, so that it skips
// formatting the others.
func (l logger) GetLevel() gobgplog.LogLevel {
	lvl := l.log.GetLevel()
	if g := zerolog.GlobalLevel(); g > lvl {
		lvl = g
	}
	switch {
	case lvl <= zerolog.TraceLevel:
		return gobgplog.DebugLevel
	case lvl == zerolog.DebugLevel:
		return gobgplog.InfoLevel
	case lvl <= zerolog.WarnLevel:
		return gobgplog.WarnLevel
	default:
		return gobgplog.ErrorLevel
	}
}

func (l logger) event(lvl zerolog.Level, msg string, f gobgplog.Fields) {
	if lvl < l.log.GetLevel() || lvl < zerolog.GlobalLevel() {
		return
	}
	e := l.log.WithLevel(lvl)
	if e == nil {
		return
	}
	// In a fixed order, so that a clash always resolves the same way and
	// lines of the same kind look alike.
	keys := make([]string, 0, len(f))
	for k := range f {
		if k != gobgplog.FieldFacility {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	used := make([]string, 0, len(keys))
	for _, gk := range keys {
		k := fieldKey(gk, used)
		used = append(used, k)
		switch v := f[gk].(type) {
		case string:
			e = e.Str(k, v)
		case int, int64, uint32, uint16, uint8, uint64, bool, float64:
			e = e.Interface(k, v)
		default:
			// fmt recovers from nil Stringers and formats anything.
			e = e.Str(k, fmt.Sprint(v))
		}
	}
	e.Msg("gobgp: " + msg)
}

// fieldKey is our key for GoBGP's field k, given the keys this line has
// already used. GoBGP names its fields in CamelCase and not always the same
// way (Err, Error and error are all errors), and zerolog writes a key twice
// if asked to, which strict JSON parsers reject. So the names
// become ours, lower case, and a name that our logger writes itself
// (reserved) or that this line already has gets the prefix "gobgp_":
// GoBGP's Message becomes gobgp_message, not a second message.
func fieldKey(k string, used []string) string {
	switch k {
	case "Key":
		k = "peer"
	case "Err", "Error":
		k = "error"
	default:
		k = strings.ToLower(k)
	}
	for reserved(k) || slices.Contains(used, k) {
		k = "gobgp_" + k
	}
	return k
}

// reserved reports whether the speaker's logger writes the key on every
// line: the component New adds, and zerolog's own keys.
func reserved(k string) bool {
	switch k {
	case "component", zerolog.LevelFieldName, zerolog.MessageFieldName, zerolog.TimestampFieldName,
		zerolog.CallerFieldName, zerolog.ErrorStackFieldName:
		return true
	}
	return false
}
