package multinode

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// An emulated link stands in for `tc qdisc … netem`, which not every kernel has (the
// kernel of the machines this was written on is built without sch_netem). The host's
// eth0 and its bridge port are TAP devices, and this process forwards the Ethernet
// frames between them, each direction through a FIFO queue that holds every frame for
// the configured delay and drops the configured fraction at random, like netem's
// "delay D loss P%" on both ends of the link. The queue holds at most queueLimit
// frames (netem's default limit) and drops what does not fit.
const queueLimit = 1000

// Link is an emulated link between a host and the bridge.
type Link struct {
	host, port *os.File // eth0 in the host's namespace, the port in the bridge's
	delay      atomic.Int64
	lossPPM    atomic.Int64 // loss in parts per million
	rngMu      sync.Mutex
	rng        *rand.Rand
	forwarded  atomic.Int64
	dropped    atomic.Int64
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

// AddEmulatedHost is AddHost with an emulated link (see Link); seed makes the frames
// it drops reproducible for the same traffic.
func (n *Net) AddEmulatedHost(name string, octet int, seed uint64) (*Host, *Link, error) {
	h, err := n.newHost(name, octet)
	if err != nil {
		return nil, nil, err
	}
	l := &Link{rng: rand.New(rand.NewPCG(seed, 0x6c72747261696e))}
	if l.host, err = openTap(h.NS, "eth0"); err == nil {
		l.port, err = openTap(n.bridge, h.port)
	}
	if err != nil {
		l.Close()
		return h, nil, err
	}
	n.links = append(n.links, l)
	h.link = l
	if err := n.run([]string{"-n", n.bridge, "link", "set", h.port, "master", "br0"}); err != nil {
		return h, l, err
	}
	if err := n.upHost(h); err != nil {
		return h, l, err
	}
	l.wg.Add(2)
	go l.forward(l.host, l.port)
	go l.forward(l.port, l.host)
	return h, l, nil
}

// Set changes the delay and loss (a fraction, 0.01 for 1 %) of both directions from
// the next frame on; Set(0, 0) makes the link clean again.
func (l *Link) Set(delay time.Duration, loss float64) {
	l.delay.Store(int64(delay))
	l.lossPPM.Store(int64(loss * 1e6))
}

// Stats returns the frames forwarded and dropped so far.
func (l *Link) Stats() (forwarded, dropped int64) {
	return l.forwarded.Load(), l.dropped.Load()
}

// Close stops forwarding; the TAP devices disappear with their descriptors.
func (l *Link) Close() {
	l.closeOnce.Do(func() {
		for _, f := range []*os.File{l.host, l.port} {
			if f != nil {
				f.Close()
			}
		}
		l.wg.Wait()
	})
}

type frame struct {
	b   []byte
	due time.Time
}

// forward copies frames from src to dst through a delay queue until src is closed.
func (l *Link) forward(src, dst *os.File) {
	defer l.wg.Done()
	q := make(chan frame, queueLimit)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for f := range q {
			if d := time.Until(f.due); d > 0 {
				time.Sleep(d)
			}
			// A port that is down refuses the frame (EIO): it is lost, as on a wire.
			if _, err := dst.Write(f.b); err == nil {
				l.forwarded.Add(1)
			}
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := src.Read(buf)
		if err != nil {
			break
		}
		if l.drop() {
			l.dropped.Add(1)
			continue
		}
		f := frame{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(time.Duration(l.delay.Load()))}
		select {
		case q <- f:
		default:
			l.dropped.Add(1) // queue full
		}
	}
	close(q)
	<-done
}

func (l *Link) drop() bool {
	ppm := l.lossPPM.Load()
	if ppm <= 0 {
		return false
	}
	l.rngMu.Lock()
	defer l.rngMu.Unlock()
	return l.rng.Int64N(1_000_000) < ppm
}

// openTap creates the TAP device name in namespace ns and returns its descriptor
// (non-blocking, so that Close interrupts a read). The device lives as long as the
// descriptor. The namespace is entered by one locked OS thread, which goes back to
// its own namespace before it is released; a thread that cannot go back is never
// released (the runtime ends it with its goroutine).
func openTap(ns, name string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, restored, err := openTapIn(ns, name)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- result{f, err}
	}()
	r := <-ch
	return r.f, r.err
}

func openTapIn(ns, name string) (f *os.File, restored bool, err error) {
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, fmt.Errorf("multinode: this thread's namespace: %w", err)
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return nil, true, fmt.Errorf("multinode: namespace %s: %w", ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("multinode: enter namespace %s: %w", ns, err)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == nil {
		var ifr *unix.Ifreq
		if ifr, err = unix.NewIfreq(name); err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
		}
	}
	if back := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); back != nil {
		if err == nil {
			unix.Close(fd)
		}
		return nil, false, errors.Join(err, fmt.Errorf("multinode: leave namespace %s: %w", ns, back))
	}
	if err != nil {
		return nil, true, fmt.Errorf("multinode: TAP device %s in namespace %s: %w", name, ns, err)
	}
	return os.NewFile(uintptr(fd), "tap:"+ns+"/"+name), true, nil
}
