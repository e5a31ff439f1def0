// Command stall measures how keepalives survive a stall: it holds all traffic between
// clients and an embedded etcd (as a process starved of CPU on either side holds it) for
// -stall, -trials times, at a random point of the keepalive cycle, once for leases kept
// by the etcd client's KeepAlive and once for rdzv's sessions (an Agent's), and counts
// the leases lost.
//
//	go run ./dist/rdzv/bench/stall -stall 2.2s -ttl 3s
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/dist/rdzv"
)

func main() {
	stall := flag.Duration("stall", 2200*time.Millisecond, "how long traffic is held")
	ttl := flag.Duration("ttl", 3*time.Second, "lease TTL (whole seconds)")
	trials := flag.Int("trials", 8, "stalls per kind of keepalive")
	flag.Parse()
	if err := run(*stall, *ttl, *trials); err != nil {
		fmt.Fprintln(os.Stderr, "stall:", err)
		os.Exit(1)
	}
}

func run(stall, ttl time.Duration, trials int) error {
	dir, err := os.MkdirTemp("", "rdzv-stall-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := etcdembed.Start(context.Background(), dir)
	if err != nil {
		return err
	}
	defer srv.Close()
	p, err := newHoldingProxy(strings.TrimPrefix(srv.Endpoint(), "http://"))
	if err != nil {
		return err
	}
	for _, kind := range []string{"etcd client KeepAlive", "rdzv session"} {
		lost := 0
		for range trials {
			done, closeFn, err := open(kind, p.addr, ttl)
			if err != nil {
				return err
			}
			time.Sleep(ttl/2 + time.Duration(rand.Float64()*float64(ttl/2))) // a random point of the cycle
			p.hold(true)
			time.Sleep(stall)
			p.hold(false)
			time.Sleep(ttl + time.Second) // a loss has been declared by then
			select {
			case <-done:
				lost++
			default:
			}
			closeFn()
		}
		fmt.Printf("%s: TTL %v, traffic held %v: %d of %d leases lost\n", kind, ttl, stall, lost, trials)
	}
	return nil
}

// open starts one lease of the given kind through addr and returns what closes when it
// is lost.
func open(kind, addr string, ttl time.Duration) (<-chan struct{}, func(), error) {
	if kind == "rdzv session" {
		a, err := rdzv.NewAgent(context.Background(), "stall", rdzv.WithEndpoints(addr), rdzv.WithTTL(ttl),
			rdzv.WithLogger(zap.NewNop()))
		if err != nil {
			return nil, nil, err
		}
		return a.Done(), func() { a.Close() }, nil
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, nil, err
	}
	l, err := cli.Grant(context.Background(), int64(ttl/time.Second))
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	ch, err := cli.KeepAlive(context.Background(), l.ID)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done, func() { cli.Close() }, nil
}

// holdingProxy forwards TCP connections and can hold all traffic without closing any.
type holdingProxy struct {
	mu   sync.Mutex
	cond *sync.Cond
	held bool
	addr string
}

func newHoldingProxy(target string) (*holdingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &holdingProxy{addr: ln.Addr().String()}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	return p, nil
}

func (p *holdingProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.held {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *holdingProxy) hold(on bool) {
	p.mu.Lock()
	p.held = on
	p.cond.Broadcast()
	p.mu.Unlock()
}
