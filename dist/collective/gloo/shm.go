package gloo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// shm is the shared-memory transport of a group whose ranks all run on one
// host: every collective goes through mapped files instead of Gloo's TCP
// connections.
//
// Each rank owns one file: a header page (its counter and failure word) and a
// window of Config.SharedMemory bytes. A collective moves its data a window at
// a time, so the files stay that size whatever the collective moves.
//
// The protocol. A rank's counter (its header's sequence word) is incremented
// only by that rank ("posts") and read by every peer; "waiting" means waiting
// until every peer's counter has reached this rank's. One window is: wait (every
// peer has finished reading this rank's window, so it may be overwritten),
// write this rank's part, post, wait (every part is written), read the peers'
// windows, post. The last post is not waited for: the next window's first
// wait does that, usually without sleeping. Every rank runs the same
// collectives with the same sizes, so the counters advance in step.
//
// Failures. A wait sleeps on the peer's counter (a futex) in ticks of
// waitTick and between ticks checks this rank's abort flag, the call's
// deadline, the peer's failure word (set by a peer whose own collective failed
// or was aborted) and whether the peer's process is alive (see segment.alive):
// a killed rank fails its peers' collectives within milliseconds, as Gloo's
// closed sockets do.
type shm struct {
	rank, size int
	window     int        // bytes of each rank's window
	files      []*segment // every rank's file: header page, then its window
	seq        uint32     // this rank's counter, as last posted
	aborted    atomic.Bool
	probed     time.Time // when a peer's process was last checked
}

// setupShm builds the transport after Gloo has connected, or returns nil and
// why not. It needs every rank on this host (equal hostIdentity) and a file
// each, allocated in full, that every rank can map; the ranks agree on both
// through Gloo, so that they all use the transport or all do without it.
func setupShm(ctx context.Context, cfg collective.Config, nat *native, timeoutMs int64) (*shm, string, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	prefix := "gloo." + cfg.Name + ".shm."
	id := hostIdentity()
	key := fmt.Sprintf("%s%d", prefix, cfg.Rank)
	if err := cfg.Store.Publish(ctx, key, []byte(id+"\n"+hex.EncodeToString(nonce))); err != nil {
		return nil, "", fmt.Errorf("%w: publish rank %d's host (key %q): %w", collective.ErrStore, cfg.Rank, key, err)
	}
	s := &shm{rank: cfg.Rank, size: cfg.Size, window: int(cfg.SharedMemory) / 64 * 64}
	var nonce0 string
	same := id != ""
	for r := range cfg.Size {
		v, err := cfg.Store.Lookup(ctx, fmt.Sprintf("%s%d", prefix, r))
		if err != nil {
			return nil, "", fmt.Errorf("%w: wait for rank %d's host (key %q%d): %w", collective.ErrStore, r, prefix, r, err)
		}
		peer, n, _ := strings.Cut(string(v), "\n")
		same = same && peer == id
		if r == 0 {
			nonce0 = n
		}
	}
	agree := func(ok bool) (bool, error) {
		v := [1]float64{0}
		if ok {
			v[0] = 1
		}
		if st := nat.allReduce(unsafe.Pointer(&v[0]), 1, collective.Float64, collective.Min, timeoutMs); st.code != codeOK {
			return false, fmt.Errorf("%w: rank %d: agree on shared memory: %s", sentinelOf(st.code, collective.ErrPeerLost), cfg.Rank, st.msg)
		}
		return v[0] == 1, nil
	}
	s.files = make([]*segment, cfg.Size)
	own := segmentPath(nonce0, s.rank)
	size := hdrBytes + s.window
	reason := ""
	var err error
	if !same {
		reason = "the ranks do not share a host (or " + shmDir + ")"
	} else {
		sweepOrphans() // what ranks killed in this window before left
		if s.files[s.rank], err = createFile(own, size); err != nil {
			reason = err.Error()
		}
	}
	other := "another rank could not create its file in " + shmDir
	ok, aerr := agree(reason == "")
	if aerr == nil && ok {
		for r := range cfg.Size {
			if r != s.rank && reason == "" {
				if s.files[r], err = openSegment(segmentPath(nonce0, r), size); err != nil {
					reason = err.Error()
				}
			}
		}
		other = "another rank could not map this rank's file"
		ok, aerr = agree(reason == "")
	}
	os.Remove(own) // every rank has it mapped, or none will use it
	if aerr != nil || !ok {
		s.release()
		if reason == "" {
			reason = other
		}
		return nil, reason, aerr
	}
	return s, "", nil
}

// createFile creates this rank's file (a variable for the tests, which make
// it fail as a full tmpfs would).
var createFile = createSegment

// release unmaps every file (their names are already gone).
func (s *shm) release() {
	for _, seg := range s.files {
		seg.unmap()
	}
	s.files = nil
}

// abort fails this rank's collective in flight (within a tick) and every
// peer's that waits on it: it raises the failure word and wakes the peers.
func (s *shm) abort() {
	s.aborted.Store(true)
	if h := s.files[s.rank]; h != nil && h.mem != nil {
		atomic.StoreUint32(h.word(offFailed), 1)
		futexWake(h.word(offSeq))
	}
}

// post advances this rank's counter and wakes the peers waiting on it.
func (s *shm) post() {
	s.seq++
	w := s.files[s.rank].word(offSeq)
	atomic.StoreUint32(w, s.seq)
	futexWake(w)
}

// await waits until every peer's counter reaches this rank's. A peer that
// has failed fails the wait even when its counter is there: the group is
// broken for every rank, as a peer's reset connections break Gloo's.
func (s *shm) await(deadline time.Time) *nativeStatus {
	for p := range s.size {
		if p == s.rank {
			continue
		}
		st := awaitWord(s.files[p].word(offSeq), s.seq, func() *nativeStatus { return s.check(p, deadline) })
		if st == nil && atomic.LoadUint32(s.files[p].word(offFailed)) != 0 {
			st = s.check(p, deadline)
		}
		if st != nil {
			return st
		}
	}
	return nil
}

// check ends a wait on peer p with a failure: this rank aborted, p failed or
// died, or the deadline passed; nil lets the wait go on.
func (s *shm) check(p int, deadline time.Time) *nativeStatus {
	fail := func(code int, format string, a ...any) *nativeStatus {
		return &nativeStatus{code: code, msg: fmt.Sprintf(format, a...) + " (shared memory)"}
	}
	switch {
	case s.aborted.Load():
		return fail(codeIO, "aborted while waiting for rank %d", p)
	case atomic.LoadUint32(s.files[p].word(offFailed)) != 0:
		return fail(codeIO, "rank %d failed its own collective", p)
	case time.Now().After(deadline):
		return fail(codeTimeout, "timed out waiting for rank %d", p)
	}
	if time.Since(s.probed) >= 10*time.Millisecond {
		s.probed = time.Now()
		if !s.files[p].alive() {
			return fail(codeIO, "rank %d's process is gone", p)
		}
	}
	return nil
}

// exchange runs one window's steps around write and reads (write may be nil):
// wait until this rank's window is free, write, post, then for each read: wait
// for every peer's post, read, post. write gets this rank's window, a read every
// rank's (and may write this rank's part that no peer reads in that step).
func (s *shm) exchange(deadline time.Time, write func(own []byte), reads ...func(windows [][]byte)) nativeStatus {
	if st := s.await(deadline); st != nil {
		return *st
	}
	if write != nil {
		write(s.files[s.rank].mem[hdrBytes:])
	}
	s.post()
	windows := make([][]byte, s.size)
	for p, f := range s.files {
		windows[p] = f.mem[hdrBytes:]
	}
	for _, read := range reads {
		if st := s.await(deadline); st != nil {
			return *st
		}
		if read != nil {
			read(windows)
		}
		s.post()
	}
	return nativeStatus{code: codeOK}
}
