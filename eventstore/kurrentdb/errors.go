package kurrentdb

import (
	"errors"
	"fmt"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderledger/orderledger/eventstore"
)

// mapError turns a client error into the port's sentinels, naming the server. The client's
// error stays wrapped, so callers can still inspect the *esdb.Error.
func mapError(err error, addr string) error {
	if isAppendTooLarge(err) {
		return fmt.Errorf("%w: kurrentdb at %s refuses the append as too large: its MaxAppendSize is below the %d bytes orderledger assumes (the server's default): %w",
			eventstore.ErrInvalidEvent, addr, eventstore.MaxAppendSize, err)
	}
	if isAborted(err) {
		return fmt.Errorf("%w: kurrentdb at %s timed out committing: the write may still commit, and appending the same batch again (same event IDs, same expected revision) is recognised as a retry: %w",
			eventstore.ErrUnavailable, addr, err)
	}
	if isAccessDenied(err) {
		return fmt.Errorf("kurrentdb at %s denies the user a right (reading $all needs read access to $all; an append, write access to its stream and read access to the stream's metadata): %w", addr, err)
	}
	var esdbErr *esdb.Error
	if errors.As(err, &esdbErr) {
		switch esdbErr.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("%w: kurrentdb at %s: %w", eventstore.ErrWrongExpectedRevision, addr, err)
		case esdb.ErrorCodeStreamDeleted:
			return fmt.Errorf("%w: kurrentdb at %s: %w", eventstore.ErrStreamDeleted, addr, err)
		case esdb.ErrorCodeConnectionClosed, esdb.ErrorUnavailable, esdb.ErrorCodeDeadlineExceeded,
			esdb.ErrorCodeNotLeader:
			return fmt.Errorf("%w: kurrentdb at %s: %w", eventstore.ErrUnavailable, addr, err)
		}
		return fmt.Errorf("kurrentdb at %s: %w", addr, err)
	}
	// Reads and subscriptions can hand back the bare gRPC error.
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("%w: kurrentdb at %s: %w", eventstore.ErrUnavailable, addr, err)
	}
	return fmt.Errorf("kurrentdb at %s: %w", addr, err)
}

// isAborted reports a server's answer that a write timed out (RpcExceptions.Timeout in
// kurrent-io/KurrentDB: StatusCode.Aborted, for a prepare, commit or forward timeout). The
// write is not undone: it may yet commit.
func isAborted(err error) bool {
	return hasCode(err, esdb.ErrorAborted) || status.Code(err) == codes.Aborted
}

// isAccessDenied reports a server's refusal for want of a right (RpcExceptions.AccessDenied:
// StatusCode.PermissionDenied).
func isAccessDenied(err error) bool {
	return hasCode(err, esdb.ErrorCodeAccessDenied) || status.Code(err) == codes.PermissionDenied
}

// isAppendTooLarge reports a server's refusal of an append over its MaxAppendSize (or
// MaxAppendEventSize), which client v4.2.0 reports as an unknown error: the server answers
// InvalidArgument, "Maximum Append Size of N Exceeded." (RpcExceptions.cs in
// kurrent-io/KurrentDB), and the client passes the status on without reading the trailers
// that name the exception.
func isAppendTooLarge(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "Maximum Append")
}

// isClientClosed reports the client's sign that it closed itself (or was closed): every call
// on it fails at once with ErrorCodeConnectionClosed.
func isClientClosed(err error) bool { return hasCode(err, esdb.ErrorCodeConnectionClosed) }

// isStreamNotFound reports a read of a stream that has no events.
func isStreamNotFound(err error) bool { return hasCode(err, esdb.ErrorCodeResourceNotFound) }

func hasCode(err error, code esdb.ErrorCode) bool {
	var esdbErr *esdb.Error
	return errors.As(err, &esdbErr) && esdbErr.IsErrorCode(code)
}
