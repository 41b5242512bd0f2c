package demo

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

// client speaks the JSON API of docs/api.md. Every write carries an Idempotency-Key, so a write
// retried after a network error or a 503 is applied once.
type client struct {
	base    string
	http    *http.Client
	actor   string
	retries int
	pause   time.Duration // before the first retry; it doubles
}

func newClient(base string, hc *http.Client) *client {
	return &client{base: strings.TrimRight(base, "/"), http: hc, actor: "demo", retries: 4, pause: 200 * time.Millisecond}
}

// written is what every successful write answers with, besides the route's own fields.
type written struct {
	Position string `json:"position"`
}

func (c *client) post(ctx context.Context, path, key, correlation string, body, out any) error {
	return c.do(ctx, http.MethodPost, path, nil, key, correlation, body, out)
}

func (c *client) put(ctx context.Context, path, key string, body, out any) error {
	return c.do(ctx, http.MethodPut, path, nil, key, "", body, out)
}

func (c *client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, "", "", nil, out)
}

func (c *client) do(ctx context.Context, method, path string, query url.Values, key, correlation string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	pause := c.pause
	for attempt := 0; ; attempt++ {
		passing, err := c.once(ctx, method, target, path, key, correlation, payload, out)
		if err == nil || !passing || ctx.Err() != nil || attempt >= c.retries {
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

// once sends one request. passing says whether a failure may pass if retried: a broken
// connection, a 503 (not ready) or a 504 (?after= timed out).
func (c *client) once(ctx context.Context, method, target, path, key, correlation string, payload []byte, out any) (passing bool, err error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Actor", c.actor)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if correlation != "" {
		req.Header.Set("X-Correlation-ID", correlation)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return true, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return true, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var problem struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(data, &problem) // a body that is no problem document leaves the status
		passing := resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		return passing, &APIError{Method: method, Path: path, Status: resp.StatusCode, Code: problem.Code, Detail: problem.Detail}
	}
	if out == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return false, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return false, nil
}
