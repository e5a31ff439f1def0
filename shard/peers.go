package shard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/peermem"
)

// EnvPeerReads set to 0 makes a CPU shard group all-gather every unit even where
// its ranks share a host (see peers); set on any one rank, it does so for the whole
// group.
const EnvPeerReads = "LRTRAIN_SHARD_PEER_READS"

// closeWait bounds how long Close waits for the peers to finish reading this rank's
// shards before it frees them anyway (a late read then fails; it never sees freed
// memory).
const closeWait = 30 * time.Second

// peers lets a rank gather a unit by copying every other rank's shard of it out of
// that rank's memory (peermem: one process_vm_readv per peer) instead of running an
// all-gather. The shards never change after loading, so no rank waits for another:
// the ranks meet once, at Bind, to exchange where their shards are, instead of at
// every gather. It needs every rank of the group on this host, in this PID
// namespace, with reads between them allowed; Bind checks that on every rank and
// the group agrees, or it all-gathers.
type peers struct {
	self  *peermem.Local
	ranks []*peermem.Peer // by rank; nil at this rank's own
	rank  int
}

// openPeers exchanges the ranks' records through pg (two collectives, issued on
// every rank of a CPU group) and returns the peers when every rank can read every
// other; otherwise nil and why not. The shards' addresses must not change until close.
func openPeers(ctx context.Context, raw collective.RawAllGatherer, pg collective.ProcessGroup, local *Local) (*peers, string, error) {
	size, rank := pg.Size(), pg.Rank()
	want, why := os.Getenv(EnvPeerReads) != "0", EnvPeerReads+"=0"
	var self *peermem.Local
	if want {
		var err error
		if self, err = peermem.Publish(); err != nil {
			want, why = false, err.Error()
		}
	}
	addrs := make([]uint64, len(local.Shards))
	for u, s := range local.Shards {
		p, err := s.DataPtr()
		if err != nil && want {
			want, why = false, fmt.Sprintf("the shard of unit %d: %v", u, err)
		}
		addrs[u] = uint64(uintptr(p))
	}
	n := peermem.RecordLen(len(addrs))
	send, recv := make([]byte, n), make([]byte, n*size)
	if want {
		copy(send, self.Record(addrs))
	}
	if err := raw.AllGatherRaw(ctx, unsafe.Pointer(&send[0]), unsafe.Pointer(&recv[0]), n, collective.Uint8); err != nil {
		if self != nil {
			self.Revoke()
		}
		return nil, "", fmt.Errorf("shard: rank %d: exchange the shards' addresses: %w", rank, err)
	}
	p := &peers{self: self, ranks: make([]*peermem.Peer, size), rank: rank}
	for r := range size {
		if r == rank || !want {
			continue
		}
		rec := recv[r*n : (r+1)*n]
		if rec[0] == 0 { // its send buffer, left zero: peer reads off or unavailable there
			want, why = false, fmt.Sprintf("rank %d takes no part", r)
			break
		}
		pr, err := peermem.Attach(self, rec)
		if err == nil && len(pr.Addrs) != len(addrs) {
			pr.Close()
			err = fmt.Errorf("%d shard addresses, this rank's plan has %d units", len(pr.Addrs), len(addrs))
		}
		if err != nil {
			want, why = false, fmt.Sprintf("rank %d: %v", r, err)
			break
		}
		p.ranks[r] = pr
	}
	// Every rank must take the same path: a rank that cannot read every other makes
	// them all all-gather.
	verdict := []float64{0}
	if want {
		verdict[0] = 1
	}
	if err := pg.AllReduceFloat64(ctx, verdict, collective.Min); err != nil {
		p.close(false)
		return nil, "", fmt.Errorf("shard: rank %d: agree on peer reads: %w", rank, err)
	}
	if verdict[0] != 1 {
		p.close(false)
		if want {
			why = "another rank cannot read its peers"
		}
		return nil, why, nil
	}
	return p, "", nil
}

// gather fills the first limit bytes of recv (the unit's buffer: the ranks' shards
// of bytes each, in rank order) with this rank's shard of unit u, from local, and
// every other rank's.
func (p *peers) gather(u int, send, recv unsafe.Pointer, bytes, limit int) error {
	for r, pr := range p.ranks {
		if r*bytes >= limit {
			break
		}
		n := min(bytes, limit-r*bytes)
		dst := unsafe.Slice((*byte)(unsafe.Add(recv, r*bytes)), n)
		if r == p.rank {
			copy(dst, unsafe.Slice((*byte)(send), n))
			continue
		}
		if err := p.read(r, dst, pr.Addrs[u]); err != nil {
			return err
		}
	}
	return nil
}

// read copies len(dst) bytes at addr out of rank r's memory; a rank that has exited
// or given its shards up is collective.ErrPeerLost, naming it.
func (p *peers) read(r int, dst []byte, addr uint64) error {
	if err := p.ranks[r].ReadAt(dst, addr); err != nil {
		if errors.Is(err, peermem.ErrGone) {
			return fmt.Errorf("%w: rank %d: %v", collective.ErrPeerLost, r, err)
		}
		return fmt.Errorf("read rank %d's shard: %w", r, err)
	}
	return nil
}

// close tells the peers this rank reads no more and, with wait, waits (at most
// closeWait, polling) until each has said the same or is gone, so that none is still
// reading this rank's shards; then it revokes them: a read that comes later fails.
// The caller frees the shards after close.
func (p *peers) close(wait bool) {
	if p.self != nil {
		p.self.SetClosing()
	}
	deadline := time.Now().Add(closeWait)
	for _, pr := range p.ranks {
		if pr == nil {
			continue
		}
		for wait {
			closing, err := pr.Closing()
			if closing || err != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		pr.Close()
	}
	if p.self != nil {
		p.self.Revoke()
	}
}
