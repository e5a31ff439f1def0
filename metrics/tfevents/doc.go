// Package tfevents writes TensorBoard event files: scalar summaries that TensorBoard,
// tensorboard's EventAccumulator and anything else reading tf.Event records can chart.
//
// The Go module proxy has no maintained TensorBoard writer, and the format is small, so
// it is written here in plain Go, without protobuf code generation:
//
//   - the file is a TFRecord stream: each record is a little-endian uint64 length, the
//     masked CRC32C of those 8 bytes, the data, and the masked CRC32C of the data, where
//     masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 and CRC32C is Castagnoli's
//     polynomial (hash/crc32);
//   - each record's data is a serialized tensorflow.Event: wall_time (field 1, double,
//     seconds since the Unix epoch), step (field 2, int64, left out when 0, as
//     protobuf's proto3 encoders do), and either file_version (field 3, "brain.Event:2",
//     the first record of every file), summary (field 5), a tensorflow.Summary whose
//     repeated value (field 1) holds a tag (field 1) and a simple_value (field 2, float),
//     or session_log (field 7) with status (field 1) START (1).
//
// Create names the file events.out.tfevents.<unix seconds>.<host>.<pid> inside the
// directory it is given (TensorBoard reads every file whose name contains "tfevents"),
// so a resumed or restarted run adds a file beside the earlier ones instead of
// appending to them (a name already taken, as when one process resumes within the
// same second, gets a suffix .1, .2, …). Start writes a SessionLog START event: on reading one, TensorBoard
// drops the points it read before at that step or later (its purge_orphaned_data, on by
// default; for files of version 2 this event is the only sign of a restart), so a
// resumed run that starts its file with START at its first step hides what a killed
// run logged after its last checkpoint.
//
// Every Add writes one record straight to the file (no buffering), so a chart is
// current while the run goes on and a killed process loses nothing it added. Values are
// float32 on the wire, as TensorBoard's scalars are; a tag is any UTF-8 string, with "/"
// grouping the charts ("train/loss", "eval/loss").
//
// Read and ReadFile decode such streams (Writer's fields; other summary kinds are
// skipped), checking every CRC.
//
// The tests check the bytes against a record stream written by another TensorBoard
// writer for the same events, decode every record with the protobuf runtime's own
// decoder (dynamicpb, from a descriptor of tensorflow.Event built in the test) and check
// every CRC with hash/crc32 independently of this package's masking.
package tfevents
