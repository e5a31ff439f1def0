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
// host: every collective whose contribution fits the limit goes through
// mapped files instead of Gloo's TCP connections.
//
// The protocol. Each rank has a counter (its header's sequence word) that only
// it increments ("posts") and every peer reads; "waiting" means waiting until
// every peer's counter has reached this rank's. A collective is: wait (every
// peer has finished reading this rank's data file, so it may be overwritten),
// write the contribution, post, wait (every contribution is written), read the
// peers' files, post. The last post is not waited for: the next collective's
// first wait does that, usually without sleeping. Every rank runs the same
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
	nonce      string // rank 0's: names the files of this group
	limit      int    // the largest contribution in bytes that goes through shared memory
	hdr        []*segment
	data       []*segment // every rank's data file; nil until a collective needs one
	capacity   int        // bytes of each data file
	gen        int        // data files created so far
	seq        uint32     // this rank's counter, as last posted
	aborted    atomic.Bool
	probed     time.Time // when the peers' processes were last checked
}

// setupShm builds the transport after Gloo has connected, or returns nil and
// why not. It needs every rank on this host (equal hostIdentity) and a header
// file each that every rank can map; the ranks agree on both through Gloo, so
// that they all use the transport or all do without it.
func setupShm(ctx context.Context, cfg collective.Config, nat *native, timeoutMs int64) (*shm, string, error) {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	prefix := "gloo." + cfg.Name + ".shm."
	id := hostIdentity()
	if err := cfg.Store.Publish(ctx, fmt.Sprintf("%s%d", prefix, cfg.Rank), []byte(id+"\n"+hex.EncodeToString(nonce))); err != nil {
		return nil, "", fmt.Errorf("%w: publish rank %d's host (key %q): %w", collective.ErrStore, cfg.Rank, prefix, err)
	}
	s := &shm{rank: cfg.Rank, size: cfg.Size, limit: int(cfg.SharedMemory)}
	same := id != ""
	for r := range cfg.Size {
		v, err := cfg.Store.Lookup(ctx, fmt.Sprintf("%s%d", prefix, r))
		if err != nil {
			return nil, "", fmt.Errorf("%w: wait for rank %d's host (key %q%d): %w", collective.ErrStore, r, prefix, r, err)
		}
		peer, n, _ := strings.Cut(string(v), "\n")
		same = same && peer == id
		if r == 0 {
			s.nonce = n
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
	s.hdr = make([]*segment, cfg.Size)
	own := segmentPath(s.nonce, s.rank, "h")
	reason := ""
	var err error
	if !same {
		reason = "the ranks do not share a host (or " + shmDir + ")"
	} else if s.hdr[s.rank], err = createSegment(own, hdrBytes, true); err != nil {
		reason = err.Error()
	}
	ok, aerr := agree(reason == "")
	if aerr != nil || !ok {
		s.release()
		if reason == "" {
			reason = "another rank could not create its header in " + shmDir
		}
		return nil, reason, aerr
	}
	for r := range cfg.Size {
		if r != s.rank && reason == "" {
			if s.hdr[r], err = openSegment(segmentPath(s.nonce, r, "h"), hdrBytes); err != nil {
				reason = err.Error()
			}
		}
	}
	ok, aerr = agree(reason == "")
	os.Remove(own) // every rank has it mapped, or none will use it
	if aerr != nil || !ok {
		s.release()
		if reason == "" {
			reason = "another rank could not map this rank's header"
		}
		return nil, reason, aerr
	}
	return s, "", nil
}

// release unmaps every file (their names are already gone).
func (s *shm) release() {
	for _, seg := range s.hdr {
		seg.unmap()
	}
	for _, seg := range s.data {
		seg.unmap()
	}
	s.hdr, s.data = nil, nil
}

// abort fails this rank's collective in flight (within a tick) and every
// peer's that waits on it: it raises the failure word and wakes the peers.
func (s *shm) abort() {
	s.aborted.Store(true)
	if h := s.hdr[s.rank]; h != nil && h.mem != nil {
		atomic.StoreUint32(h.word(offFailed), 1)
		futexWake(h.word(offSeq))
	}
}

// post advances this rank's counter and wakes the peers waiting on it.
func (s *shm) post() {
	s.seq++
	w := s.hdr[s.rank].word(offSeq)
	atomic.StoreUint32(w, s.seq)
	futexWake(w)
}

// await waits until every peer's counter reaches this rank's.
func (s *shm) await(deadline time.Time) *nativeStatus {
	for p := range s.size {
		if p == s.rank {
			continue
		}
		err := awaitWord(s.hdr[p].word(offSeq), s.seq, func() error { return s.check(p, deadline) })
		if err != nil {
			st := err.(*shmError).status
			return &st
		}
	}
	return nil
}

type shmError struct{ status nativeStatus }

func (e *shmError) Error() string { return e.status.msg }

// check ends a wait on peer p: this rank aborted, p failed or died, or the
// deadline passed.
func (s *shm) check(p int, deadline time.Time) error {
	fail := func(code int, format string, a ...any) error {
		return &shmError{nativeStatus{code: code, msg: fmt.Sprintf(format, a...) + " (shared memory)"}}
	}
	switch {
	case s.aborted.Load():
		return fail(codeIO, "aborted while waiting for rank %d", p)
	case atomic.LoadUint32(s.hdr[p].word(offFailed)) != 0:
		return fail(codeIO, "rank %d failed its own collective", p)
	case time.Now().After(deadline):
		return fail(codeTimeout, "timed out waiting for rank %d", p)
	}
	if time.Since(s.probed) >= 10*time.Millisecond {
		s.probed = time.Now()
		if !s.hdr[p].alive() {
			return fail(codeIO, "rank %d's process is gone", p)
		}
	}
	return nil
}

// createData creates this rank's next data file (a variable for the tests,
// which make it fail as a full tmpfs would).
var createData = createDataFile

func createDataFile(path string, size int) (*segment, error) { return createSegment(path, size, false) }

// fits makes the data files hold bytes per rank, growing them when needed. It
// reports false when the contribution goes through TCP instead: over the
// limit, or a rank could not allocate the larger file (the limit then drops
// below bytes on every rank alike).
func (s *shm) fits(bytes int, deadline time.Time) (bool, *nativeStatus) {
	switch {
	case bytes <= s.capacity:
		return true, nil
	case bytes > s.limit:
		return false, nil
	}
	if st := s.await(deadline); st != nil { // the peers are done with the old files
		return false, st
	}
	const align = 1 << 20
	size := (bytes + align - 1) / align * align
	path := segmentPath(s.nonce, s.rank, fmt.Sprintf("d%d", s.gen+1))
	seg, err := createData(path, size)
	mine := uint32(growOK)
	if err != nil {
		mine = growFailed
	}
	atomic.StoreUint32(s.hdr[s.rank].word(offGrow), mine)
	s.post()
	if st := s.await(deadline); st != nil {
		seg.unmap()
		os.Remove(path)
		return false, st
	}
	all := true
	for p := range s.size {
		all = all && atomic.LoadUint32(s.hdr[p].word(offGrow)) == growOK
	}
	data := make([]*segment, s.size)
	data[s.rank] = seg
	var openErr error
	for p := range s.size {
		if all && p != s.rank && openErr == nil {
			data[p], openErr = openSegment(segmentPath(s.nonce, p, fmt.Sprintf("d%d", s.gen+1)), size)
		}
	}
	s.post() // every rank has read the grow words and opened what it could
	st := s.await(deadline)
	os.Remove(path)
	if openErr != nil || st != nil || !all {
		for _, d := range data {
			d.unmap()
		}
		if openErr != nil {
			return false, &nativeStatus{code: codeIO, msg: fmt.Sprintf("rank %d: %v (shared memory)", s.rank, openErr)}
		}
		if st != nil {
			return false, st
		}
		s.limit = bytes - 1
		return false, nil
	}
	for _, d := range s.data {
		d.unmap()
	}
	s.data, s.capacity = data, size
	s.gen++
	return true, nil
}

// exchange runs one collective's steps around write and read (either may be
// nil): wait until this rank's data file is free, write, post, wait for every
// contribution, read, post.
func (s *shm) exchange(deadline time.Time, write func(own []byte), read func(files [][]byte)) nativeStatus {
	if st := s.await(deadline); st != nil {
		return *st
	}
	if write != nil {
		write(s.data[s.rank].mem)
	}
	s.post()
	if st := s.await(deadline); st != nil {
		return *st
	}
	if read != nil {
		files := make([][]byte, s.size)
		for p, d := range s.data {
			files[p] = d.mem
		}
		read(files)
	}
	s.post()
	return nativeStatus{code: codeOK}
}
