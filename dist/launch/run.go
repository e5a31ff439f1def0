package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"
	"go.uber.org/zap"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/dist/rdzv"
)

// launcher is the state of one Run.
type launcher struct {
	cfg       Config
	log       zerolog.Logger
	runDir    string
	endpoints []string
	addr      string        // this node's address, for MASTER_ADDR
	console   io.Writer     // where teed ranks write
	hurry     chan struct{} // closed by a second signal: skip the grace period
	restarts  int           // worker failures so far
	etcdErr   <-chan error  // the standalone etcd's fatal errors
}

// Run is the node agent: it joins the job's rendezvous, starts cfg.Nproc
// workers with their ranks in the environment, and supervises them. When a
// worker fails, or the rendezvous reports a member lost, a node waiting or
// the round closed, it stops all of its workers (SIGTERM, then SIGKILL after
// the grace period) and joins the next round; worker failures count against
// cfg.MaxRestarts, membership changes do not.
//
// Run returns nil once all workers of a round have exited 0 (and, with
// several nodes, the other nodes' workers have too, or the exit barrier
// timed out). It returns an error wrapping ErrRestartsExhausted and the
// *WorkerFailure when a worker fails with no restart left, wrapping
// ErrInterrupted and an *Interrupted after SIGINT or SIGTERM (forwarded to
// the workers; a second signal skips the grace period) or the end of ctx,
// and a rendezvous error when etcd is unreachable or no round forms. Use
// ExitCode for the process's exit status.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	runDir, err := filepath.Abs(cfg.RunDir)
	if err == nil {
		err = os.MkdirAll(runDir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("launch: run directory %s: %w", cfg.RunDir, err)
	}
	l := &launcher{cfg: cfg, log: log, runDir: runDir, hurry: make(chan struct{})}
	l.console = &lockedWriter{w: cfg.Console}
	if cfg.Console == nil {
		l.console = &lockedWriter{w: os.Stdout}
	}
	for _, note := range cfg.Notes {
		log.Warn().Msg(note)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopSignals := make(chan struct{})
	defer close(stopSignals)
	go l.watchSignals(sigs, cancel, stopSignals)

	l.endpoints = cfg.Endpoints
	if cfg.Standalone {
		srv, err := l.startStandalone(ctx)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	l.addr = localAddr(cfg, l.endpoints)
	agent, err := rdzv.NewAgent(ctx, cfg.Job, l.agentOptions()...)
	if err != nil {
		return l.fail(ctx, fmt.Errorf("launch: job %s: %w", cfg.Job, err))
	}
	defer agent.Close()
	log.Info().Str("job", cfg.Job).Str("agent", agent.ID()).Strs("etcd", l.endpoints).
		Int("nproc", cfg.Nproc).Str("device", cfg.Device).
		Str("nodes", fmt.Sprintf("%d:%d", cfg.MinNodes, cfg.MaxNodes)).Msg("launcher started")
	return l.loop(ctx, agent)
}

func orDefault[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// watchSignals turns the first SIGINT or SIGTERM into the cancellation of
// Run's context, and a second one into skipping the grace period.
func (l *launcher) watchSignals(sigs <-chan os.Signal, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case s := <-sigs:
			sig, _ := s.(syscall.Signal)
			if n == 0 {
				l.log.Warn().Str("signal", s.String()).Dur("grace", l.cfg.GracePeriod).
					Msg("stopping workers (send the signal again to kill them now)")
				cancel(&Interrupted{Signal: sig})
			} else if n == 1 {
				l.log.Warn().Str("signal", s.String()).Msg("killing workers now")
				close(l.hurry)
			}
		case <-stop:
			return
		}
	}
}

// fail returns err, or the interruption when ctx ended first.
func (l *launcher) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return l.interrupted(ctx)
	}
	return err
}

func (l *launcher) interrupted(ctx context.Context) error {
	var in *Interrupted
	if !errors.As(context.Cause(ctx), &in) {
		in = &Interrupted{Cause: context.Cause(ctx)}
	}
	return fmt.Errorf("%w: %w", ErrInterrupted, in)
}

// startStandalone runs the embedded etcd with its data in a fresh directory
// under the run directory, removed when the server closes.
func (l *launcher) startStandalone(ctx context.Context) (*standalone, error) {
	dir, err := os.MkdirTemp(l.runDir, "rdzv-etcd-")
	if err != nil {
		return nil, fmt.Errorf("launch: standalone etcd directory: %w", err)
	}
	srv, err := etcdembed.Start(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, l.fail(ctx, fmt.Errorf("launch: standalone etcd: %w", err))
	}
	l.endpoints = []string{srv.Endpoint()}
	l.etcdErr = srv.Err()
	l.log.Debug().Str("endpoint", srv.Endpoint()).Str("dir", dir).Msg("standalone etcd started")
	return &standalone{srv: srv, dir: dir}, nil
}

type standalone struct {
	srv *etcdembed.Server
	dir string
}

func (s *standalone) Close() {
	s.srv.Close()
	os.RemoveAll(s.dir)
}

func (l *launcher) agentOptions() []rdzv.Option {
	c := &l.cfg
	opts := []rdzv.Option{
		rdzv.WithEndpoints(l.endpoints...),
		rdzv.WithNodes(c.MinNodes, c.MaxNodes),
		rdzv.WithNproc(c.Nproc),
		rdzv.WithLastCall(c.LastCall),
		rdzv.WithJoinTimeout(c.JoinTimeout),
		rdzv.WithDialTimeout(c.DialTimeout),
		rdzv.WithTTL(c.TTL),
		rdzv.WithWaitTimeout(c.ExitBarrierTimeout),
		rdzv.WithAddress(l.addr),
		rdzv.WithLogger(zap.NewNop()), // the launcher reports errors itself
	}
	if c.CACert != "" || c.Cert != "" {
		opts = append(opts, rdzv.WithTLSFiles(c.Cert, c.Key, c.CACert))
	}
	if c.User != "" {
		opts = append(opts, rdzv.WithAuth(c.User, c.Password))
	}
	if c.NodeRank >= 0 {
		opts = append(opts, rdzv.WithAgentID(nodeAgentID(c.NodeRank)))
	}
	return opts
}
