package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeServer stands in for a KurrentDB node in offline tests: it serves the part of the gRPC
// streams API the adapter uses (append, stream and $all reads, $all subscriptions) over a
// real socket, so that the official client runs unchanged against it. It models KurrentDB as
// this package reads KurrentDB's documentation and source: it proves the adapter's wiring to
// the client, not how a real server behaves.
//
// Where a real server behaves in a way the adapter must handle, the fake does the same, and
// says where the server's source or documentation does it: the append size limit
// (MaxAppendSize), idempotent success for a batch already stored right after the expected
// revision and CorruptedIdempotency for one stored in part, soft delete and tombstone, the
// $all read right, and lagging followers for reads that do not require the leader.
//
// Deliberate choices: every record's position is (p, p), as for KurrentDB's non-transactional
// writes; an append is answered with the position of the batch's first record, not its last,
// so that a test notices if the adapter took the answer for the last event's position (a
// real server answers with its commit record's); a read of $all from a position includes the
// record there, forwards and backwards; a subscription starts after its position.
type fakeServer struct {
	api.UnimplementedStreamsServer

	addr string

	mu      sync.Mutex
	grpc    *grpc.Server
	records []*fakeRecord
	streams map[string][]*fakeRecord
	next    uint64        // position of the next record
	wake    chan struct{} // closed, and replaced, by every append
	drop    chan struct{} // closed, and replaced, by dropSubscriptions
	// beforeAppend, when set, runs before an append is applied; tests use it to put a
	// concurrent writer's events in between.
	beforeAppend func(stream string)
	// maxAppendSize is the server's MaxAppendSize; newFakeServer sets a real server's default.
	maxAppendSize int
	// followerSees, when not negative, is how many records of the log a lagging follower has:
	// reads that do not require the leader see only those (see visible).
	followerSees int
	// denyAll refuses $all reads and subscriptions, as a server does to a user without read
	// access to $all.
	denyAll bool
	// timeOutCommits makes appends commit and then answer that the commit timed out.
	timeOutCommits bool
	// sent counts the records stream and $all reads have sent, for tests of what reads cost.
	sent int
}

// defaultMaxAppendSize is a KurrentDB server's default MaxAppendSize, 1 MiB
// (ClusterVNodeOptions.cs in kurrent-io/KurrentDB).
const defaultMaxAppendSize = 1 << 20

type fakeRecord struct {
	id          uuid.UUID
	stream      string
	revision    uint64
	eventType   string
	contentType string
	data, meta  []byte
	created     time.Time
	pos         uint64
	seq         int // index in fakeServer.records
}

// deletedStream is the event number of a tombstone, and the $tb a soft delete sets:
// EventNumber.DeletedStream, long.MaxValue (docs/server/features/streams.md in
// kurrent-io/KurrentDB, "Deleting streams and events").
const deletedStream = math.MaxInt64

// newFakeServer starts a fake on a free port of 127.0.0.1; t.Cleanup stops it.
func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{
		addr:    lis.Addr().String(),
		streams: map[string][]*fakeRecord{},
		next:    1000, // a fresh KurrentDB log starts with records of its own
		wake:    make(chan struct{}),
		drop:    make(chan struct{}),

		maxAppendSize: defaultMaxAppendSize,
		followerSees:  -1,
	}
	f.serve(lis)
	t.Cleanup(f.stop)
	return f
}

// connString points the client at the fake, without TLS, with discovery and deadlines short
// enough that a test of an outage finishes in seconds.
func (f *fakeServer) connString() string {
	return "esdb://" + f.addr + "?tls=false&maxDiscoverAttempts=3&discoveryInterval=20&gossipTimeout=1&defaultDeadline=3000"
}

func (f *fakeServer) serve(lis net.Listener) {
	srv := grpc.NewServer()
	api.RegisterStreamsServer(srv, f)
	f.mu.Lock()
	f.grpc = srv
	f.mu.Unlock()
	go srv.Serve(lis)
}

// stop takes the server down, as a crashed node; the log survives for restart.
func (f *fakeServer) stop() {
	f.mu.Lock()
	srv := f.grpc
	f.mu.Unlock()
	srv.Stop()
}

// restart serves the same log on the same address again.
func (f *fakeServer) restart(t *testing.T) {
	t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the port can take a moment to be free again
		if lis, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restarting the fake on %s: %v", f.addr, err)
	}
	f.serve(lis)
}

// dropSubscriptions ends every live subscription with Unavailable, as a node does when it
// loses leadership or shuts down a connection.
func (f *fakeServer) dropSubscriptions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.drop)
	f.drop = make(chan struct{})
}

func (f *fakeServer) setBeforeAppend(hook func(stream string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beforeAppend = hook
}

// put appends records directly, as another writer (or the server itself) would.
func (f *fakeServer) put(stream, eventType string, data, meta []byte) *fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putLocked(stream, uuid.New(), eventType, "application/json", data, meta)
}

func (f *fakeServer) putLocked(stream string, id uuid.UUID, eventType, contentType string, data, meta []byte) *fakeRecord {
	return f.putAtLocked(stream, uint64(len(f.streams[stream])), id, eventType, contentType, data, meta)
}

func (f *fakeServer) putAtLocked(stream string, revision uint64, id uuid.UUID, eventType, contentType string, data, meta []byte) *fakeRecord {
	r := &fakeRecord{
		id: id, stream: stream, revision: revision, eventType: eventType,
		contentType: contentType, data: data, meta: meta, created: time.Now(), pos: f.next, seq: len(f.records),
	}
	f.next += uint64(100 + len(data) + len(meta))
	f.records = append(f.records, r)
	f.streams[stream] = append(f.streams[stream], r)
	close(f.wake)
	f.wake = make(chan struct{})
	return r
}

func (f *fakeServer) Append(stream api.Streams_AppendServer) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "fake: the first message must be the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	f.mu.Lock()
	maxSize := f.maxAppendSize
	f.mu.Unlock()
	var proposed []*api.AppendReq_ProposedMessage
	size := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		m := req.GetProposedMessage()
		// As a server does while it receives the request (Streams.Append.cs in
		// kurrent-io/KurrentDB): Event.SizeOnDisk counts data, user metadata and the type's
		// UTF-16 length twice, and the whole append may not exceed MaxAppendSize.
		size += len(m.GetData()) + len(m.GetCustomMetadata()) + 2*len(utf16.Encode([]rune(m.GetMetadata()["type"])))
		if size > maxSize {
			stream.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(maxSize)))
			return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", maxSize)
		}
		proposed = append(proposed, m)
	}

	f.mu.Lock()
	hook := f.beforeAppend
	f.mu.Unlock()
	if hook != nil {
		hook(name)
	}

	ids := make([]uuid.UUID, len(proposed))
	for i, m := range proposed {
		s := m.GetId().GetStructured()
		id, err := esdb.ParseUUIDFromInt64(s.GetMostSignificantBits(), s.GetLeastSignificantBits())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		ids[i] = id
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	decision, current, already := f.checkCommitLocked(name, opts, ids)
	switch decision {
	case commitDeleted:
		return streamDeletedError(stream, name)
	case commitWrongExpectedVersion:
		wrong := &api.AppendResp_WrongExpectedVersion{CurrentRevisionOption: &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}}
		if current >= 0 {
			wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
		}
		if rev, isRev := opts.GetExpectedStreamRevision().(*api.AppendReq_Options_Revision); isRev {
			wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: rev.Revision}
		} else {
			wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		}
		return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrong}})
	case commitIdempotent:
		// The batch is already there: success, with the revision and position of its last
		// event (IndexWriter.CheckCommit, CommitDecision.Idempotent, answered as
		// AlreadyCommitted by the request manager).
		return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: already.revision},
			PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: already.pos, PreparePosition: already.pos}},
		}}})
	}
	softDeleted := f.truncateBeforeLocked(name) == deletedStream
	var first, last *fakeRecord
	for i, m := range proposed {
		last = f.putLocked(name, ids[i], m.GetMetadata()["type"], m.GetMetadata()["content-type"], m.GetData(), m.GetCustomMetadata())
		if first == nil {
			first = last
		}
	}
	if softDeleted {
		// Appending to a soft-deleted stream undeletes it: its events go on from the last
		// revision before the delete, and only they are visible (docs/server/features/streams.md
		// in kurrent-io/KurrentDB, "Soft delete and TruncateBefore").
		f.setTruncateBeforeLocked(name, first.revision)
	}
	if f.timeOutCommits {
		// The write is in the log, but the answer is the one a commit timeout gives:
		// RpcExceptions.Timeout, StatusCode.Aborted.
		return status.Error(codes.Aborted, "Operation timed out: Commit phase timeout.")
	}
	return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: first.pos, PreparePosition: first.pos}},
	}}})
}

type commitDecision int

const (
	commitOK commitDecision = iota
	commitWrongExpectedVersion
	commitDeleted
	commitIdempotent
)

// checkCommitLocked decides an append as KurrentDB's IndexWriter.CheckCommit does
// (src/KurrentDB.Core/Services/Storage/ReaderIndex/IndexWriter.cs): a tombstoned stream refuses
// it; an expected revision behind the stream's is checked event by event from the revision
// after it, and a batch found there whole is idempotent (success, nothing written), one found
// only in part is CorruptedIdempotency, which the server answers as a wrong expected version;
// NoStream on a soft-deleted stream appends. For Any and StreamExists the server looks the
// event IDs up in a cache of recently committed events, bounded in memory; the fake looks in
// the whole stream. current is the stream's last revision, -1 when it has none.
func (f *fakeServer) checkCommitLocked(name string, opts *api.AppendReq_Options, ids []uuid.UUID) (decision commitDecision, current int64, already *fakeRecord) {
	records := f.streams[name]
	current = int64(len(records)) - 1
	if current >= 0 && records[current].revision == deletedStream {
		return commitDeleted, current, nil
	}
	softDeleted := f.truncateBeforeLocked(name) == deletedStream
	var expected int64
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_StreamExists, *api.AppendReq_Options_Any:
		if _, exists := e.(*api.AppendReq_Options_StreamExists); exists && softDeleted {
			return commitDeleted, current, nil
		} else if exists && current < 0 {
			return commitWrongExpectedVersion, current, nil
		}
		for i, id := range ids {
			r := findRecord(records, id)
			if r == nil && i == 0 {
				return commitOK, current, nil
			}
			if r == nil {
				return commitWrongExpectedVersion, current, nil // CorruptedIdempotency
			}
			already = r
		}
		return commitIdempotent, current, already
	case *api.AppendReq_Options_NoStream:
		expected = -1
	case *api.AppendReq_Options_Revision:
		expected = int64(e.Revision)
	}
	switch {
	case expected < current:
		for i, id := range ids {
			n := expected + 1 + int64(i)
			if n <= current && records[n].id == id {
				already = records[n]
				continue
			}
			if i > 0 {
				return commitWrongExpectedVersion, current, nil // CorruptedIdempotency
			}
			if expected == -1 && softDeleted {
				return commitOK, current, nil
			}
			return commitWrongExpectedVersion, current, nil
		}
		return commitIdempotent, current, already
	case expected > current:
		return commitWrongExpectedVersion, current, nil
	}
	return commitOK, current, nil
}

func findRecord(records []*fakeRecord, id uuid.UUID) *fakeRecord {
	for _, r := range records {
		if r.id == id {
			return r
		}
	}
	return nil
}

// truncateBeforeLocked is the stream's $tb, from the last event of its metadata stream $$name;
// 0 when it has none.
func (f *fakeServer) truncateBeforeLocked(name string) int64 {
	meta := f.streams["$$"+name]
	if len(meta) == 0 {
		return 0
	}
	var m struct {
		TruncateBefore int64 `json:"$tb"`
	}
	if err := json.Unmarshal(meta[len(meta)-1].data, &m); err != nil {
		return 0
	}
	return m.TruncateBefore
}

func (f *fakeServer) setTruncateBeforeLocked(name string, tb uint64) *fakeRecord {
	return f.putLocked("$$"+name, uuid.New(), "$metadata", "application/json", []byte(`{"$tb":`+strconv.FormatUint(tb, 10)+`}`), nil)
}

// streamDeletedError is the server's answer to a read of or an append to a tombstoned stream
// (RpcExceptions.StreamDeleted): FailedPrecondition, with the trailers client v4.2.0 reads.
func streamDeletedError(srv grpc.ServerStream, name string) error {
	srv.SetTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
}

// Delete soft-deletes a stream: a server writes $tb = long.MaxValue to its metadata, after which
// reads of it find no stream (docs/server/features/streams.md in kurrent-io/KurrentDB). Only
// the expected revision Any is honoured.
func (f *fakeServer) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	f.mu.Lock()
	defer f.mu.Unlock()
	records := f.streams[name]
	if len(records) > 0 && records[len(records)-1].revision == deletedStream {
		grpc.SetTrailer(ctx, metadata.Pairs("exception", "stream-deleted", "stream-name", name))
		return nil, status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
	}
	r := f.setTruncateBeforeLocked(name, deletedStream)
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{CommitPosition: r.pos, PreparePosition: r.pos}}}, nil
}

// Tombstone hard-deletes a stream: a server appends a $streamDeleted event numbered
// long.MaxValue, after which reads of and appends to the stream fail with StreamDeleted; the
// tombstone is in $all (docs/server/features/streams.md in kurrent-io/KurrentDB, "Hard delete").
func (f *fakeServer) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.putAtLocked(name, deletedStream, uuid.New(), "$streamDeleted", "application/octet-stream", nil, nil)
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{CommitPosition: r.pos, PreparePosition: r.pos}}}, nil
}

func (f *fakeServer) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	forwards := o.GetReadDirection() == api.ReadReq_Options_Forwards
	if all := o.GetAll(); all != nil {
		f.mu.Lock()
		deny := f.denyAll
		f.mu.Unlock()
		if deny {
			// $all is a system stream, readable by $admins only unless its ACL ($$$all) says
			// otherwise (docs/server/security/user-authorization.md in kurrent-io/KurrentDB);
			// the server answers RpcExceptions.AccessDenied.
			srv.SetTrailer(metadata.Pairs("exception", "access-denied"))
			return status.Error(codes.PermissionDenied, "Access Denied")
		}
		if o.GetSubscription() != nil {
			return f.subscribe(o, srv)
		}
		f.mu.Lock()
		records := f.visibleLocked(srv.Context(), f.records)
		f.mu.Unlock()
		return f.sendRecords(srv, pick(records, forwards, o.GetCount(), func(r *fakeRecord) bool {
			switch {
			case all.GetStart() != nil:
				return forwards
			case all.GetEnd() != nil:
				return !forwards
			case forwards:
				return r.pos >= all.GetPosition().GetCommitPosition()
			}
			return r.pos <= all.GetPosition().GetCommitPosition()
		}))
	}

	so := o.GetStream()
	if so == nil || o.GetSubscription() != nil {
		return status.Error(codes.Unimplemented, "fake: only stream reads, $all reads and $all subscriptions")
	}
	name := so.GetStreamIdentifier().GetStreamName()
	f.mu.Lock()
	records := f.visibleLocked(srv.Context(), f.streams[string(name)])
	tb := f.truncateBeforeLocked(string(name))
	f.mu.Unlock()
	// As IndexReader.ReadStreamEvents* (src/KurrentDB.Core/Services/Storage/ReaderIndex/
	// IndexReader.cs in kurrent-io/KurrentDB): a tombstoned stream is StreamDeleted, a stream
	// without events or soft-deleted ($tb = long.MaxValue) is NoStream, and events before $tb
	// are not returned.
	if len(records) > 0 && records[len(records)-1].revision == deletedStream {
		return streamDeletedError(srv, string(name))
	}
	if len(records) == 0 || tb == deletedStream {
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: name},
		}}})
	}
	return f.sendRecords(srv, pick(records, forwards, o.GetCount(), func(r *fakeRecord) bool {
		if int64(r.revision) < tb {
			return false
		}
		switch {
		case so.GetStart() != nil:
			return forwards
		case so.GetEnd() != nil:
			return !forwards
		case forwards:
			return r.revision >= so.GetRevision()
		}
		return r.revision <= so.GetRevision()
	}))
}

// visibleLocked is what a read on ctx sees of records: all of them, or, while the fake plays a
// lagging follower (followerSees), only the records it has, unless the read requires the
// leader. A server reads the requires-leader header of every read (Streams.Read.cs in
// kurrent-io/KurrentDB) and a follower answers such a read with NotLeader and the leader's
// address, to which the client reconnects; the fake, being one node, plays that leader.
func (f *fakeServer) visibleLocked(ctx context.Context, records []*fakeRecord) []*fakeRecord {
	if f.followerSees < 0 {
		return records
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("requires-leader")) > 0 && md.Get("requires-leader")[0] == "true" {
		return records
	}
	n := 0
	for n < len(records) && records[n].seq < f.followerSees {
		n++
	}
	return records[:n]
}

// lagFollower makes the fake a follower that has the log as it is now and no more, for reads
// that do not require the leader.
func (f *fakeServer) lagFollower() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.followerSees = len(f.records)
}

// pick returns up to count of records (in log order) that from accepts, in read order.
func pick(records []*fakeRecord, forwards bool, count uint64, from func(*fakeRecord) bool) []*fakeRecord {
	var out []*fakeRecord
	for i := range records {
		r := records[i]
		if !forwards {
			r = records[len(records)-1-i]
		}
		if uint64(len(out)) == count {
			break
		}
		if from(r) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeServer) sendRecords(srv api.Streams_ReadServer, records []*fakeRecord) error {
	f.mu.Lock()
	f.sent += len(records)
	f.mu.Unlock()
	for _, r := range records {
		if err := srv.Send(r.response()); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeServer) subscribe(o *api.ReadReq_Options, srv api.Streams_ReadServer) error {
	keep, err := fakeFilter(o.GetFilter())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	all := o.GetAll()
	f.mu.Lock()
	next := 0
	switch {
	case all.GetEnd() != nil:
		next = len(f.records)
	case all.GetPosition() != nil:
		for next < len(f.records) && f.records[next].pos <= all.GetPosition().GetCommitPosition() {
			next++
		}
	}
	f.mu.Unlock()

	caughtUp := false
	for {
		f.mu.Lock()
		records, wake, drop := f.records[next:], f.wake, f.drop
		f.mu.Unlock()
		for _, r := range records {
			if keep(r) {
				if err := srv.Send(r.response()); err != nil {
					return err
				}
			}
			next++
		}
		if !caughtUp && len(records) > 0 {
			// A real server sends checkpoints and a caught-up notice; the adapter must pass over them.
			last := records[len(records)-1].pos
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{CommitPosition: last, PreparePosition: last}}}); err != nil {
				return err
			}
		}
		if !caughtUp {
			caughtUp = true
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-wake:
		case <-drop:
			return status.Error(codes.Unavailable, "fake: subscription dropped")
		case <-srv.Context().Done():
			return srv.Context().Err()
		}
	}
}

// fakeFilter applies a subscription filter: a stream name or event type, by prefixes or regex.
func fakeFilter(filter *api.ReadReq_Options_FilterOptions) (func(*fakeRecord) bool, error) {
	if filter == nil {
		return func(*fakeRecord) bool { return true }, nil
	}
	field := func(r *fakeRecord) string { return r.eventType }
	expr := filter.GetEventType()
	if s := filter.GetStreamIdentifier(); s != nil {
		field, expr = func(r *fakeRecord) string { return r.stream }, s
	}
	if len(expr.GetPrefix()) > 0 {
		return func(r *fakeRecord) bool {
			for _, p := range expr.GetPrefix() {
				if strings.HasPrefix(field(r), p) {
					return true
				}
			}
			return false
		}, nil
	}
	re, err := regexp.Compile(expr.GetRegex())
	if err != nil {
		return nil, fmt.Errorf("fake: filter regex: %w", err)
	}
	return func(r *fakeRecord) bool { return re.MatchString(field(r)) }, nil
}

func (r *fakeRecord) response() *api.ReadResp {
	most, least := esdb.UUIDAsInt64(r.id)
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id: &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
				MostSignificantBits: most, LeastSignificantBits: least,
			}}},
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.pos,
			CommitPosition:   r.pos,
			Metadata: map[string]string{
				"type":         r.eventType,
				"content-type": r.contentType,
				// .NET ticks (100 ns) since the Unix epoch, as KurrentDB sends them.
				"created": strconv.FormatInt(r.created.UnixNano()/100, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}}
}

// sentSince returns how many records reads have sent since the last call.
func (f *fakeServer) sentSince() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.sent
	f.sent = 0
	return n
}

func (f *fakeServer) set(change func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}
