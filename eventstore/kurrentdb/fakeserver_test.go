package kurrentdb

import (
	"errors"
	"fmt"
	"io"
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
}

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
	r := &fakeRecord{
		id: id, stream: stream, revision: uint64(len(f.streams[stream])), eventType: eventType,
		contentType: contentType, data: data, meta: meta, created: time.Now(), pos: f.next,
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

	f.mu.Lock()
	defer f.mu.Unlock()
	current := int64(len(f.streams[name])) - 1
	var ok bool
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		ok = true
	case *api.AppendReq_Options_NoStream:
		ok = current == -1
	case *api.AppendReq_Options_StreamExists:
		ok = current >= 0
	case *api.AppendReq_Options_Revision:
		ok = current == int64(e.Revision)
	}
	if !ok {
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
	}
	var first, last *fakeRecord
	for _, m := range proposed {
		s := m.GetId().GetStructured()
		id, err := esdb.ParseUUIDFromInt64(s.GetMostSignificantBits(), s.GetLeastSignificantBits())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		last = f.putLocked(name, id, m.GetMetadata()["type"], m.GetMetadata()["content-type"], m.GetData(), m.GetCustomMetadata())
		if first == nil {
			first = last
		}
	}
	return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: first.pos, PreparePosition: first.pos}},
	}}})
}

func (f *fakeServer) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	forwards := o.GetReadDirection() == api.ReadReq_Options_Forwards
	if all := o.GetAll(); all != nil {
		if o.GetSubscription() != nil {
			return f.subscribe(o, srv)
		}
		f.mu.Lock()
		records := f.records
		f.mu.Unlock()
		return sendRecords(srv, pick(records, forwards, o.GetCount(), func(r *fakeRecord) bool {
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
	records := f.streams[string(name)]
	f.mu.Unlock()
	if len(records) == 0 {
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: name},
		}}})
	}
	return sendRecords(srv, pick(records, forwards, o.GetCount(), func(r *fakeRecord) bool {
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

func sendRecords(srv api.Streams_ReadServer, records []*fakeRecord) error {
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
