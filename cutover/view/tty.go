package view

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-isatty"

	"github.com/cutover/cutover/cutover/engine"
)

// styled colors the view with lipgloss, in the color profile of the
// terminal it writes to.
type styled struct {
	kinds map[string]lipgloss.Style
}

func newStyled(out io.Writer) styled {
	r := lipgloss.NewRenderer(out)
	return styled{kinds: map[string]lipgloss.Style{
		kOK:  r.NewStyle().Foreground(lipgloss.Color("2")),
		kBad: r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		// Amber: a person should look (held, rolled back, partial, waiting).
		kWarn: r.NewStyle().Foreground(lipgloss.CompleteColor{TrueColor: "#ffaf00", ANSI256: "214", ANSI: "3"}),
		// Progress: under way, a gate still rising.
		kBusy: r.NewStyle().Foreground(lipgloss.Color("6")),
		kDim:  r.NewStyle().Faint(true),
		kBold: r.NewStyle().Bold(true),
	}}
}

func (s styled) style(kind, str string) string {
	if strings.TrimSpace(str) == "" {
		return str
	}
	return s.kinds[kind].Render(str)
}

func (s styled) bar(p engine.BatchPhase, width int) string {
	full, _ := barFill(p, width)
	return "[" + s.style(phaseKind(p), strings.Repeat("█", full)) + s.style(kDim, strings.Repeat("░", width-full)) + "]"
}

// model is the Bubble Tea model of the live view.
type model struct {
	ctx  context.Context
	src  Source
	opts Options
	sty  styler
	tr   *tracker

	st      engine.Status
	height  int
	width   int
	failing time.Time // since when src fails; zero: it does not
	lastErr error
	// Why the view stopped, besides the run ending.
	fatal       error
	interrupted bool
}

type statusMsg struct {
	st  engine.Status
	err error
}

type tickMsg struct{}

func newModel(ctx context.Context, src Source, opts Options, sty styler, st engine.Status) *model {
	m := &model{ctx: ctx, src: src, opts: opts, sty: sty, tr: &tracker{keep: max(opts.Events, 0)}, st: st}
	m.tr.fresh(st.Events)
	return m
}

func (m *model) Init() tea.Cmd { return m.tick() }

func (m *model) tick() tea.Cmd {
	return tea.Tick(m.opts.Interval, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *model) poll() tea.Cmd {
	ctx, src := m.ctx, m.src
	return func() tea.Msg {
		st, err := src(ctx)
		return statusMsg{st, err}
	}
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.height, m.width = msg.Height, msg.Width
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			m.interrupted = true
			return m, tea.Quit
		}
	case tickMsg:
		return m, m.poll()
	case statusMsg:
		if msg.err != nil {
			if m.failing.IsZero() {
				m.failing = time.Now()
			}
			m.lastErr = msg.err
			if time.Since(m.failing) > m.opts.Patience {
				m.fatal = fmt.Errorf("watch: no status for %s: %w", m.opts.Patience, msg.err)
				return m, tea.Quit
			}
			return m, m.tick()
		}
		m.failing, m.lastErr = time.Time{}, nil
		m.st = msg.st
		m.tr.fresh(msg.st.Events)
		if !following(m.st, m.opts) {
			return m, tea.Quit
		}
		return m, m.tick()
	}
	return m, nil
}

func (m *model) View() string {
	opts := m.opts
	var tail []string
	if m.lastErr != nil {
		tail = append(tail, m.sty.style(kBad, fmt.Sprintf("status unavailable since %s: %v (retrying)",
			m.failing.In(opts.Location).Format("15:04:05"), m.lastErr)))
	}
	switch {
	case m.interrupted:
	case m.st.State.Active():
		tail = append(tail, m.sty.style(kDim, "q: stop watching (the run goes on in the daemon)"))
	case following(m.st, opts):
		tail = append(tail, m.sty.style(kDim, "q: stop waiting"))
	}
	if m.height > 0 {
		opts.height = max(1, m.height-len(tail))
	}
	opts.width = m.width
	v := render(m.st, m.tr.recent, opts, m.sty)
	for _, l := range tail {
		v += l + "\n"
	}
	return v
}

// keys is where the live view reads q and Ctrl-C from: the terminal on
// stdin, or nothing (Ctrl-C then arrives as SIGINT).
func keys() io.Reader {
	if isatty.IsTerminal(os.Stdin.Fd()) {
		return os.Stdin
	}
	return nil
}

// watchTTY redraws the view in place until the run ends (and, with
// opts.WaitForRun, while there is none yet).
func watchTTY(ctx context.Context, src Source, out io.Writer, in io.Reader, st engine.Status, opts Options) (engine.Status, error) {
	m := newModel(ctx, src, opts, newStyled(out), st)
	_, err := tea.NewProgram(m, tea.WithOutput(out), tea.WithInput(in), tea.WithContext(ctx)).Run()
	switch {
	case m.interrupted || errors.Is(err, tea.ErrInterrupted):
		return m.st, ErrInterrupted
	case err != nil && ctx.Err() != nil:
		return m.st, ctx.Err()
	case err != nil:
		return m.st, fmt.Errorf("watch: %w", err)
	}
	return m.st, m.fatal
}
