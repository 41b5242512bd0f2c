package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// APIError is an answer the server gave with a status other than 2xx.
type APIError struct {
	Method, Path string
	Status       int
	Code         string // the problem's code, e.g. "insufficient_stock"
	Detail       string
}

func (e *APIError) Error() string {
	detail := e.Detail
	if detail == "" {
		detail = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, detail)
}

// Client speaks the JSON API. It is safe for concurrent use.
type Client struct {
	base    string
	http    *http.Client
	token   string
	actor   string
	retries int
	pause   time.Duration // before the first retry; it doubles
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests through hc (its transport, timeout, connection pool).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithToken sends token as "Authorization: Bearer <token>" on every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithRetries retries a request that failed in a way a retry can fix (a broken connection,
// 503 or 504) up to n times, the first after pause, doubling. n = 0 never retries.
func WithRetries(n int, pause time.Duration) Option {
	return func(c *Client) { c.retries, c.pause = n, pause }
}

// WithActor names the client in X-Actor, for servers that believed it; this one records the
// name of the request's token as the actor (anonymous in open mode) whatever X-Actor says.
func WithActor(name string) Option { return func(c *Client) { c.actor = name } }

// New returns a client of the server at base (e.g. "http://127.0.0.1:8080"): by default
// http.DefaultClient, no token, four retries from 200 ms.
func New(base string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(base, "/"), http: http.DefaultClient, retries: 4, pause: 200 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Base is the server's URL the client was made with, without a trailing slash.
func (c *Client) Base() string { return c.base }

// Headers are the optional headers of one write.
type Headers struct {
	// IdempotencyKey makes the write safe to retry: the server applies it once and answers a
	// repeat with the first answer.
	IdempotencyKey string
	// CorrelationID ties the write's events to others of one business transaction.
	CorrelationID string
}

// Post sends body as JSON and decodes the answer into out (unless nil).
func (c *Client) Post(ctx context.Context, path string, h Headers, body, out any) error {
	return c.Do(ctx, http.MethodPost, path, nil, h, body, out)
}

// Put sends body as JSON and decodes the answer into out (unless nil).
func (c *Client) Put(ctx context.Context, path string, h Headers, body, out any) error {
	return c.Do(ctx, http.MethodPut, path, nil, h, body, out)
}

// Get reads path with query and decodes the answer into out (unless nil).
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	return c.Do(ctx, http.MethodGet, path, query, Headers{}, nil, out)
}

// Do sends one request, retrying as configured; body is sent as JSON unless nil (a []byte is
// sent as it is). A write is retried only with an Idempotency-Key, so that a retry never
// applies it twice.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, h Headers, body, out any) error {
	var payload []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		payload = b
	default:
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	retries := c.retries
	if method != http.MethodGet && method != http.MethodHead && h.IdempotencyKey == "" {
		retries = 0
	}
	pause := c.pause
	for attempt := 0; ; attempt++ {
		status, answer, err := c.Send(ctx, method, target, h, payload)
		passing := err != nil
		if err == nil && (status < 200 || status > 299) {
			var problem struct {
				Code   string `json:"code"`
				Detail string `json:"detail"`
			}
			_ = json.Unmarshal(answer, &problem) // a body that is no problem document leaves the status
			passing = status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
			err = &APIError{Method: method, Path: path, Status: status, Code: problem.Code, Detail: problem.Detail}
		}
		if err == nil {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(answer, out); err != nil {
				return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
			}
			return nil
		}
		if !passing || ctx.Err() != nil || attempt >= retries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// maxAnswer bounds how much of an answer Send reads.
const maxAnswer = 16 << 20

// Send sends one request as it is (target is the path and query; body nil or JSON) and returns
// the status and the answer's body, whatever the status: for callers that judge statuses
// themselves, such as a benchmark. It never retries.
func (c *Client) Send(ctx context.Context, method, target string, h Headers, body []byte) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	path, _, _ := strings.Cut(target, "?")
	req, err := http.NewRequestWithContext(ctx, method, c.base+target, reader)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil || method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/json") // a body-less write too: 415 otherwise
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.actor != "" {
		req.Header.Set("X-Actor", c.actor)
	}
	if h.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", h.IdempotencyKey)
	}
	if h.CorrelationID != "" {
		req.Header.Set("X-Correlation-ID", h.CorrelationID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, answer, nil
}
