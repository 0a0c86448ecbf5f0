package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os/user"
	"slices"
	"strconv"
)

// peerCred is the unix identity of the process at the other end of an API
// connection (SO_PEERCRED), as ConnContext found it.
type peerCred struct {
	UID, GID uint32
	User     string // the user's name, or the uid when it has none
}

type peerKey struct{}

// peerOf returns the identity ConnContext recorded, if any.
func peerOf(ctx context.Context) (peerCred, bool) {
	p, ok := ctx.Value(peerKey{}).(peerCred)
	return p, ok
}

// roles decides who may change a run: root, and the members of one unix
// group. The socket's other users (its group, mode 0660) only observe:
// status, the journal (report, watch). Without a group every user of the
// socket operates, as before roles existed.
type roles struct {
	group string
	gid   uint32
	// groupsOf returns the groups (gids) user uid belongs to; tests
	// replace it.
	groupsOf func(uid uint32) ([]string, error)
}

// newRoles resolves group ("" for none): a group that does not exist is
// a mistake in the daemon's configuration, refused at start.
func newRoles(group string) (*roles, error) {
	if group == "" {
		return nil, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return nil, fmt.Errorf("--operator-group %q: %w", group, err)
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("--operator-group %q: gid %q: %w", group, g.Gid, err)
	}
	return &roles{group: group, gid: uint32(gid), groupsOf: userGroups}, nil
}

// userGroups returns the groups the user with this uid belongs to, as the
// system's group database says.
func userGroups(uid uint32) ([]string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	return u.GroupIds()
}

// operate refuses (403) a command of a user who may only observe.
func (r *roles) operate(ctx context.Context, cmd string) error {
	if r == nil {
		return nil
	}
	p, ok := peerOf(ctx)
	if !ok {
		return &httpError{code: http.StatusForbidden, msg: fmt.Sprintf("%s: refused: the daemon cannot tell who asked (no unix peer credentials), and changing a run takes membership of the unix group %q", cmd, r.group)}
	}
	if p.UID == 0 || p.GID == r.gid {
		return nil
	}
	gids, err := r.groupsOf(p.UID)
	if err == nil && slices.Contains(gids, strconv.FormatUint(uint64(r.gid), 10)) {
		return nil
	}
	return &httpError{code: http.StatusForbidden, msg: fmt.Sprintf("%s: refused: %s may observe (status, report, watch) but not change the run: that takes membership of the unix group %q", cmd, p.User, r.group)}
}
