// Package peermem lets a process read memory of another process on the same host
// directly (Linux's process_vm_readv: one copy, kernel to kernel, no shared
// segment and no participation of the other process), and tells a read of live
// memory from a read of memory its owner has let go.
//
// The sharded backbone uses it on a CPU: a rank's shards of the frozen weights never
// change after loading, so a rank on the same host can copy a block's shards out of
// its peers whenever it needs them, without the ranks meeting for an all-gather
// (shard.Gatherer; LRTRAIN_SHARD_PEER_READS=0 turns it off).
//
// # Protocol
//
// Each process Publishes a page holding a random 16-byte token and a state word,
// and sends its Record (boot id, PID namespace, PID, the page's address, the token,
// and the addresses it lets peers read) to the others through any channel (the
// shard group's all-gather). Attach checks that a record comes from this boot and
// PID namespace and that its page can be read and holds its token (ErrNotLocal
// otherwise: another host, a container with its own PIDs, a kernel or seccomp
// policy that refuses the reads). Peer.ReadAt reads the data and then the page in
// one system call and accepts the data only if the page still holds the token and
// the process has not exited (its pidfd): a peer that exited, was replaced by
// another process with its PID, or Revoked its page before freeing the memory
// yields ErrGone, never stale bytes. SetClosing and Peer.Closing let processes wait
// for one another before they Revoke and free.
//
// Under Yama's ptrace_scope 1 Publish declares the process's parent as its tracer
// (prctl PR_SET_PTRACER), which lets the parent's other children, its sibling
// workers, read it; scope 2 or 3, or a seccomp profile without process_vm_readv,
// makes Attach fail with ErrNotLocal, and the caller falls back to its
// collective.
package peermem
