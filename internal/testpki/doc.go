// Package testpki issues throwaway X.509 certificates for tests that exercise
// TLS for real: a certificate authority and leaf certificates signed by it,
// valid for both server and client authentication, for given IP addresses and
// names, written as PEM files. Keys are ECDSA P-256; certificates are valid
// from an hour ago for a day. Nothing here is meant for production use.
//
//	ca, err := testpki.NewCA(dir, "test CA")
//	leaf, err := ca.Issue("etcd-0", []net.IP{net.ParseIP("10.0.0.1")}, "etcd-0")
//	// ca.CertFile, leaf.CertFile, leaf.KeyFile
package testpki
