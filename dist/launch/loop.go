package launch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lrtrain/lrtrain/dist/rdzv"
)

// masterKey is the round-scoped rendezvous key under which node rank 0
// publishes MASTER_ADDR:MASTER_PORT.
const masterKey = "master-addr"

// How a round of workers ended.
type outcomeKind int

const (
	succeeded   outcomeKind = iota + 1 // every local worker exited 0
	failed                             // a worker exited non-zero or was killed
	changed                            // the rendezvous fired: join the next round
	interrupted                        // signal or context
	fatal                              // a worker cannot start, or the standalone etcd failed
)

type outcome struct {
	kind    outcomeKind
	failure *WorkerFailure
	event   rdzv.Event
	err     error
}

// loop runs rounds until the workers succeed or the launcher gives up.
func (l *launcher) loop(ctx context.Context, agent *rdzv.Agent) error {
	for {
		round, err := agent.Join(ctx)
		if err != nil {
			return l.fail(ctx, fmt.Errorf("launch: rendezvous: %w", err))
		}
		l.log.Info().Int64("round", round.Number).Int("node_rank", round.NodeRank).
			Int("nodes", round.NumNodes).Int("world_size", round.WorldSize).
			Int("restart", l.restarts).Msg("round formed")
		wctx, stopWatch := context.WithCancel(ctx)
		events := agent.Watch(wctx)
		out := l.runRound(ctx, agent, round, events)
		stopWatch()
		switch out.kind {
		case succeeded:
			l.log.Info().Int64("round", round.Number).Msg("all workers exited 0")
			l.exitBarrier(ctx, agent, round)
			return nil
		case interrupted:
			err := l.interrupted(ctx)
			l.log.Warn().Int64("round", round.Number).Err(err).Msg("workers stopped")
			return err
		case fatal:
			return out.err
		case changed:
			l.log.Warn().Int64("round", round.Number).Str("event", out.event.Kind.String()).
				Str("agent", out.event.Agent).AnErr("cause", out.event.Err).
				Msg(changeMessage(out.event.Kind))
		case failed:
			f := out.failure
			l.log.Error().Int("rank", f.Rank).Int("exit_code", f.ExitCode).Str("signal", signalName(f.Signal)).
				Str("log", f.Log).Str("log_tail", logTail(f.Log, 10)).Msg("worker failed: workers stopped")
			if err := agent.Check(ctx); err != nil && ctx.Err() == nil {
				// The worker most likely failed because its own session was lost: the
				// next Join forms a round if etcd is back, else reports it unreachable.
				l.log.Warn().Err(err).Msg("the rendezvous failed too (etcd): joining the next round without counting a restart")
				continue
			}
			if l.restarts >= l.cfg.MaxRestarts {
				return fmt.Errorf("%w (max restarts %d): %w", ErrRestartsExhausted, l.cfg.MaxRestarts, f)
			}
			l.restarts++
			l.log.Warn().Int("restart", l.restarts).Int("max_restarts", l.cfg.MaxRestarts).Msg("restarting the workers")
		}
	}
}

// changeMessage is what the launcher logs after stopping its workers
// because the round ended.
func changeMessage(k rdzv.EventKind) string {
	switch k {
	case rdzv.SessionLost:
		return "rendezvous session lost (etcd unanswered for the TTL): workers stopped, joining the next round"
	case rdzv.WatchFailed:
		return "rendezvous failed: workers stopped, joining the next round"
	}
	return "membership changed: workers stopped, joining the next round"
}

// runRound agrees on the master address, starts the workers and watches
// them and the rendezvous until the round ends, then stops the workers.
func (l *launcher) runRound(ctx context.Context, agent *rdzv.Agent, round *rdzv.Round, events <-chan rdzv.Event) outcome {
	host, port, out := l.master(ctx, agent, round, events)
	if out.kind != 0 {
		return out
	}
	c := &l.cfg
	g, err := startGroup(c, groupSpec{
		round: round.Number, restart: l.restarts, console: l.console,
		logDir: filepath.Join(l.runDir, "logs", fmt.Sprintf("round%d", round.Number)),
		env: func(local int) WorkerEnv {
			w := WorkerEnv{
				Rank: round.GlobalRank(local), LocalRank: local,
				WorldSize: round.WorldSize, LocalWorldSize: c.Nproc,
				NodeRank: round.NodeRank, NumNodes: round.NumNodes, Role: c.Role,
				MasterAddr: host, MasterPort: port, Restart: l.restarts, MaxRestarts: c.MaxRestarts,
				Endpoints: l.endpoints, Job: c.Job, Round: round.Number,
				CACert: c.CACert, Cert: c.Cert, Key: c.Key, User: c.User, Password: c.Password,
				TTL: c.TTL, DialTimeout: c.DialTimeout, OMPThreads: c.OMPThreads,
			}
			if c.Device == DeviceGPU {
				w.CUDAVisibleDevices = c.GPUs[local]
			}
			return w
		},
	})
	if err != nil {
		return outcome{kind: fatal, err: err}
	}
	l.log.Info().Int64("round", round.Number).Int("first_rank", round.GlobalRank(0)).
		Str("master", net.JoinHostPort(host, strconv.Itoa(port))).Msg("workers started")
	out = l.monitor(ctx, g, events)
	sig := syscall.SIGTERM
	if in := interruptSignal(ctx); in != 0 {
		sig = in // forward what the launcher received
	}
	g.stop(sig, c.GracePeriod, l.hurry)
	return out
}

// master returns MASTER_ADDR and MASTER_PORT: node rank 0 picks them and
// publishes them for the round; the others look them up, unless the round
// ends first.
func (l *launcher) master(ctx context.Context, agent *rdzv.Agent, round *rdzv.Round, events <-chan rdzv.Event) (string, int, outcome) {
	if round.NodeRank == 0 {
		port := l.cfg.MasterPort
		if port == 0 {
			var err error
			if port, err = freePort(l.addr); err != nil {
				return "", 0, outcome{kind: fatal, err: err}
			}
		}
		addr := net.JoinHostPort(l.addr, strconv.Itoa(port))
		if err := agent.Publish(ctx, masterKey, []byte(addr)); err != nil {
			return "", 0, l.roundError(ctx, round, err)
		}
		return l.addr, port, outcome{}
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   []byte
		err error
	}
	res := make(chan result, 1)
	go func() { v, err := agent.Lookup(lctx, masterKey); res <- result{v, err} }()
	select {
	case r := <-res:
		if r.err != nil {
			return "", 0, l.roundError(ctx, round, r.err)
		}
		host, p, err := net.SplitHostPort(string(r.v))
		port, perr := strconv.Atoi(p)
		if err != nil || perr != nil {
			return "", 0, l.roundError(ctx, round, fmt.Errorf("launch: bad master address %q from node 0", r.v))
		}
		return host, port, outcome{}
	case ev := <-events:
		return "", 0, l.eventOutcome(ctx, ev)
	}
}

// roundError makes a failed rendezvous request of a round into a reason to
// join the next one (Join then reports a lasting failure).
func (l *launcher) roundError(ctx context.Context, round *rdzv.Round, err error) outcome {
	if ctx.Err() != nil {
		return outcome{kind: interrupted}
	}
	return outcome{kind: changed, event: rdzv.Event{Kind: rdzv.WatchFailed, Round: round.Number, Err: err}}
}

func (l *launcher) eventOutcome(ctx context.Context, ev rdzv.Event) outcome {
	if ev.Kind == rdzv.Canceled || ctx.Err() != nil {
		return outcome{kind: interrupted}
	}
	return outcome{kind: changed, event: ev}
}

// monitor waits for the first reason to end the round.
func (l *launcher) monitor(ctx context.Context, g *group, events <-chan rdzv.Event) outcome {
	tick := time.NewTicker(l.cfg.MonitorInterval)
	defer tick.Stop()
	exited := 0
	for {
		select {
		case w := <-g.exits:
			if f := g.failure(w); f != nil {
				return outcome{kind: failed, failure: f}
			}
			l.log.Debug().Int("rank", w.rank).Msg("worker exited 0")
			if exited++; exited == len(g.workers) {
				return outcome{kind: succeeded}
			}
		case ev := <-events:
			return l.eventOutcome(ctx, ev)
		case <-ctx.Done():
			return outcome{kind: interrupted}
		case err := <-l.etcdErr:
			return outcome{kind: fatal, err: fmt.Errorf("launch: standalone etcd failed: %w", err)}
		case <-tick.C:
			l.log.Debug().Int64("round", g.round).Int("running", len(g.workers)-exited).Msg("workers healthy")
		}
	}
}

// exitBarrier keeps this node's agent (and its lease) in the round until
// every node's workers have finished, so that nodes still running do not
// see it leave and restart. It gives up when the round changes or after
// the exit barrier timeout: this node's work is done either way.
func (l *launcher) exitBarrier(ctx context.Context, agent *rdzv.Agent, round *rdzv.Round) {
	if round.NumNodes == 1 {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, l.cfg.ExitBarrierTimeout)
	defer cancel()
	events := agent.Watch(bctx)
	done := make(chan error, 1)
	go func() { done <- agent.Barrier(bctx, "exit", round.NumNodes) }()
	select {
	case err := <-done:
		if err != nil {
			l.log.Warn().Err(err).Msg("exit barrier: not every node reported; this node is done")
		}
	case ev := <-events:
		// A member that passed the barrier and left is the usual case here.
		l.log.Debug().Str("event", ev.String()).Msg("exit barrier: round changed; this node is done")
		cancel()
		<-done
	}
}

func interruptSignal(ctx context.Context) syscall.Signal {
	if in, ok := context.Cause(ctx).(*Interrupted); ok {
		return in.Signal
	}
	return 0
}

func signalName(s syscall.Signal) string {
	if s == 0 {
		return ""
	}
	return s.String()
}

// localAddr is the address other nodes reach this one at: --local-addr,
// loopback when standalone, else the local address of the route to etcd.
func localAddr(c Config, endpoints []string) string {
	if c.LocalAddr != "" {
		return c.LocalAddr
	}
	if c.Standalone {
		return "127.0.0.1"
	}
	for _, ep := range endpoints {
		host := ep
		if u, err := url.Parse(ep); err == nil && u.Host != "" {
			host = u.Host
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(host, "2379")
		}
		// A UDP "connection" sends nothing; it only picks the route.
		if conn, err := net.Dial("udp", host); err == nil {
			ip := conn.LocalAddr().(*net.UDPAddr).IP.String()
			conn.Close()
			return ip
		}
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "127.0.0.1"
}

// nodeAgentID names an agent so that agent ids sort by node rank.
func nodeAgentID(rank int) string {
	h, _ := os.Hostname()
	h = strings.ReplaceAll(orDefault(h, "host"), "/", "_")
	return fmt.Sprintf("node%06d-%s-%d-%04x", rank, h, os.Getpid(), rand.IntN(1<<16))
}

// freePort asks the OS for a free TCP port on addr. The port is released
// before rank 0 binds it; that race is the same as torchrun's.
func freePort(addr string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("launch: pick a master port on %s: %w", addr, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
