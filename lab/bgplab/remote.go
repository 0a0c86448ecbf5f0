package bgplab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cutover/cutover/bgp"
	"github.com/cutover/cutover/bgp/gobgp"
)

// SpeakerEnv carries a speaker's JSON configuration to a child process that
// MaybeServeSpeaker turns into a speaker.
const SpeakerEnv = "CUTOVER_BGPLAB_SPEAKER"

type request struct {
	Op     string        `json:"op"` // set, accepted, wait, peers, close
	Routes []bgp.Route   `json:"routes,omitempty"`
	Wait   time.Duration `json:"wait,omitempty"`
}

type response struct {
	Error       string           `json:"error,omitempty"`
	Took        time.Duration    `json:"took"`
	Convergence *bgp.Convergence `json:"convergence,omitempty"`
	Peers       []bgp.PeerStatus `json:"peers,omitempty"`
}

// MaybeServeSpeaker turns this process into a speaker when SpeakerEnv is
// set, and exits when done; otherwise it returns at once. A test package
// that uses Start calls it first in TestMain.
func MaybeServeSpeaker() {
	js := os.Getenv(SpeakerEnv)
	if js == "" {
		return
	}
	log := zerolog.New(os.Stderr).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	var cfg bgp.Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		log.Error().Err(err).Msg("speaker config")
		os.Exit(2)
	}
	if err := ServeSpeaker(context.Background(), cfg, os.Stdin, os.Stdout, log); err != nil {
		log.Error().Err(err).Msg("speaker")
		os.Exit(1)
	}
	os.Exit(0)
}

// ServeSpeaker runs a speaker for cfg and answers requests (JSON lines)
// from in on out. It returns when asked to close (after Close) or when in
// ends: then without Close, so the process exits as if it crashed, with
// the kernel closing its sessions.
func ServeSpeaker(ctx context.Context, cfg bgp.Config, in io.Reader, out io.Writer, log zerolog.Logger) error {
	sp, err := gobgp.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	dec := json.NewDecoder(bufio.NewReaderSize(in, 1<<20))
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read request: %w", err)
		}
		var resp response
		start := time.Now()
		switch req.Op {
		case "set":
			err = sp.Set(ctx, req.Routes)
		case "accepted":
			var c bgp.Convergence
			c, err = sp.Accepted(ctx, req.Routes)
			resp.Convergence = &c
		case "wait":
			wctx, cancel := context.WithTimeout(ctx, req.Wait)
			var c bgp.Convergence
			c, err = bgp.WaitConverged(wctx, sp, req.Routes, 20*time.Millisecond)
			cancel()
			resp.Convergence = &c
		case "peers":
			resp.Peers, err = sp.Peers(ctx)
		case "close":
			err = sp.Close()
		default:
			err = fmt.Errorf("unknown op %q", req.Op)
		}
		resp.Took = time.Since(start)
		if err != nil {
			resp.Error = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		if req.Op == "close" {
			return nil
		}
	}
}

// Remote is a speaker in a child process inside a namespace, driven over
// its stdin and stdout. It implements bgp.Speaker; Kill ends the process
// the hard way.
type Remote struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	dec  *json.Decoder
	mu   sync.Mutex
	done chan struct{}
	err  error // exit status once done
}

var _ bgp.Speaker = (*Remote)(nil)

// Start runs this program again inside namespace ns as a speaker for cfg
// (its TestMain or main must call MaybeServeSpeaker). The child's log goes
// to logTo.
func Start(ns string, cfg bgp.Config, logTo io.Writer) (*Remote, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("start speaker: %w", err)
	}
	cmd, err := Command(ns)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, SpeakerEnv+"="+string(js))
	cmd.Stderr = logTo
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start speaker: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start speaker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start speaker: %w", err)
	}
	r := &Remote{cmd: cmd, in: in, dec: json.NewDecoder(bufio.NewReaderSize(out, 1<<20)), done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// Pid is the speaker's process id (`ip netns exec` execs it in place).
func (r *Remote) Pid() int { return r.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the process to end.
func (r *Remote) Kill() error {
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill speaker: %w", err)
	}
	<-r.done
	return nil
}

// Exit closes the speaker's stdin, so that it exits without Close (as a
// crash would, but letting the kernel close its sockets), and waits.
func (r *Remote) Exit() error {
	r.in.Close()
	<-r.done
	return r.err
}

func (r *Remote) call(req request) (response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var resp response
	if err := json.NewEncoder(r.in).Encode(req); err != nil {
		return resp, fmt.Errorf("speaker %s: %w", req.Op, err)
	}
	if err := r.dec.Decode(&resp); err != nil {
		return resp, fmt.Errorf("speaker %s: no answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("speaker %s: %s", req.Op, resp.Error)
	}
	return resp, nil
}

// Set implements bgp.Speaker.
func (r *Remote) Set(_ context.Context, desired []bgp.Route) error {
	if desired == nil {
		desired = []bgp.Route{}
	}
	_, err := r.call(request{Op: "set", Routes: desired})
	return err
}

// Accepted implements bgp.Speaker.
func (r *Remote) Accepted(_ context.Context, want []bgp.Route) (bgp.Convergence, error) {
	resp, err := r.call(request{Op: "accepted", Routes: want})
	if resp.Convergence == nil {
		return bgp.Convergence{}, err
	}
	return *resp.Convergence, err
}

// WaitConverged runs bgp.WaitConverged inside the child for up to d.
func (r *Remote) WaitConverged(want []bgp.Route, d time.Duration) (bgp.Convergence, error) {
	resp, err := r.call(request{Op: "wait", Routes: want, Wait: d})
	if resp.Convergence == nil {
		return bgp.Convergence{}, err
	}
	return *resp.Convergence, err
}

// Peers implements bgp.Speaker.
func (r *Remote) Peers(context.Context) ([]bgp.PeerStatus, error) {
	resp, err := r.call(request{Op: "peers"})
	return resp.Peers, err
}

// Close implements bgp.Speaker: the child closes its speaker and exits.
func (r *Remote) Close() error {
	_, err := r.call(request{Op: "close"})
	r.in.Close()
	<-r.done
	if err != nil {
		return err
	}
	return r.err
}
