// Package checkpoint keeps crash-safe checkpoint directories: nothing partial is ever
// taken for a checkpoint, whatever point a save is interrupted at.
//
// Layout under a root directory:
//
//	<root>/step-000100/           a checkpoint: the caller's files + manifest.json
//	<root>/step-000200/
//	<root>/latest                 "step-000200\n": the newest committed checkpoint
//	<root>/.tmp-step-000300-xyz/  a save in progress (or one that crashed)
//
// Save writes every file into a temporary directory, fsyncs each one, writes manifest.json
// (format name and version, step, size and SHA-256 of every file, plus the caller's own
// fields), fsyncs the directory, renames it to step-NNNNNN, fsyncs the root and only then
// moves the latest pointer (write latest.tmp, fsync, rename, fsync root). A checkpoint is
// committed when latest designates it. A save that fails cleans up after itself; one that
// is killed leaves a temporary directory or an uncommitted step directory, which readers
// ignore, the next save of that step replaces and Prune removes once stale.
//
// Load verifies a checkpoint completely (manifest, every checksum, no missing or extra
// file); Latest follows the pointer; LatestValid walks back to the newest checkpoint that
// verifies and reports what it skipped and why. Prune keeps the newest N and never the
// checkpoint latest designates, nor anything a concurrent save may still be writing.
//
// One process saves into a root at a time (rank 0 in a distributed job). Errors start with
// "checkpoint:", name the file at fault, and wrap ErrCorrupt, ErrChecksum,
// ErrUnsupportedVersion, ErrNoCheckpoint, ErrUncommitted or ErrExists where one applies.
package checkpoint
