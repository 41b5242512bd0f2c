package kurrentdb

import (
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderledger/orderledger/eventstore"
)

// mapError turns a client error into the port's sentinels, naming the server. The client's
// error stays wrapped, so callers can still inspect the *esdb.Error.
func mapError(err error, addr string) error {
	var esdbErr *esdb.Error
	if errors.As(err, &esdbErr) {
		switch esdbErr.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("%w: kurrentdb at %s: %w", eventstore.ErrWrongExpectedRevision, addr, err)
		case esdb.ErrorCodeConnectionClosed, esdb.ErrorUnavailable, esdb.ErrorCodeDeadlineExceeded,
			esdb.ErrorCodeNotLeader, esdb.ErrorAborted:
			return fmt.Errorf("%w: kurrentdb at %s: %w", eventstore.ErrUnavailable, addr, err)
		}
		return fmt.Errorf("kurrentdb at %s: %w", addr, err)
	}
	// Reads and subscriptions can hand back the bare gRPC error.
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return fmt.Errorf("%w: kurrentdb at %s: %w", eventstore.ErrUnavailable, addr, err)
	}
	return fmt.Errorf("kurrentdb at %s: %w", addr, err)
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
