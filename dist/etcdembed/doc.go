// Package etcdembed runs an etcd server inside the current process, for
// `lrtrain launch --standalone`, for tests, and as one member of a cluster
// (the multi-node test harness runs three).
//
// By default the server is a single member listening on 127.0.0.1 only, on
// free ports chosen at start (or a fixed client port, see WithClientPort).
// Cluster mode (WithHost, WithPeerPort, WithInitialCluster, WithClientTLS,
// WithPeerTLS) makes it one member of a cluster on a routable address, with
// TLS for clients and peers. The server keeps its data under the directory
// given to Start, and logs at error level so that it does not drown the
// trainer's own output. Start returns once the server is ready to serve
// requests, or a clear error when it is not ready within the ready timeout.
//
// Rendezvous state is short-lived, so fsync is off by default (WithFsync turns
// it back on); a crash loses the rendezvous keys, which the agents recreate.
//
//	srv, err := etcdembed.Start(ctx, dir)
//	if err != nil { ... }
//	defer srv.Close()
//	endpoint := srv.Endpoint() // "http://127.0.0.1:PORT", for rdzv.WithEndpoints
package etcdembed
