// Package multinode is lrtrain's multi-node test harness: it builds a small network of
// "nodes" out of Linux network namespaces on one machine, runs a three-member etcd
// cluster and one `lrtrain launch` agent per node across them, and injects faults.
//
// What it builds (Net, Host, Link): a namespace that holds a bridge, and one
// namespace per host joined to it by a veth pair (or, for a host whose link must be
// slowed down, by a pair of TAP devices whose frames this process forwards through a
// delaying, dropping queue: Link, a stand-in for tc netem, which the kernels this was
// built on lack). Nothing is created in the caller's namespace and every address lives
// in a namespace the harness owns, so all traffic stays inside them. Namespace names
// start with NamePrefix and the creating process's pid; Net.Close kills whatever runs
// in them and deletes them, and Sweep removes those of runs whose process died before
// it could clean up.
//
// Processes run in a host with Host.Start (`ip netns exec`), with SIGKILL as their
// parent-death signal. The etcd members (Etcd, Member) are the test binary itself run
// again as a member (RunMemberFromEnv, called first by TestMain): the embedded server
// of dist/etcdembed in cluster mode, with mutual TLS between members and towards
// clients, certificates issued at run time by internal/testpki. Each member writes a
// JSON line whenever its view of the raft leader changes, which is how the tests time
// elections without a client of their own.
//
// The tests need root (namespaces) and iproute2; without them they skip, saying so.
// They take minutes, so `make test` leaves them out and `make test-multinode` runs them:
//
//	sudo make test-multinode
//	LRTRAIN_MULTINODE_KEEP=/tmp/mn go test -v -run NodeLinkDown ./dist/multinode  # keep the files
package multinode
