package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"

	"github.com/orderledger/orderledger/internal/openapi"
)

// conformance checks every request the end-to-end tests send through client, and every answer
// they get, against internal/openapi/openapi.json with a maintained OpenAPI 3.1 validator
// (libopenapi-validator), so that the document cannot drift from the server: an answer whose
// status, headers or body the document does not declare is a violation, and so is a request
// the document refuses that the server accepted, and so is an answer without the security
// headers every answer carries. TestMain reports the violations and fails.
type conformance struct {
	validator validator.Validator
	mu        sync.Mutex // the validator's caches are not documented as safe for concurrent use
	checked   int
	requests  int // of which the document refuses the request, and the server did too
	skipped   int // HEAD requests and streams, which the document does not describe
	problems  []string
}

var checker *conformance

// newConformance builds the checker from the embedded document.
func newConformance() (*conformance, error) {
	doc, err := libopenapi.NewDocument(openapi.Document())
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	// The servers of this suite run in open mode (loopback, no token ever created), where no
	// route needs the bearer token the document's security asks for; who may call what is held
	// by the route × role matrix (cmd/orderledger TestRouteRoleMatrix) and the access tests.
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions(), config.WithoutSecurityValidation())
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi.json: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %s", describeViolations(errs))
	}
	return &conformance{validator: v}, nil
}

// validatingTransport hands every exchange to the checker.
type validatingTransport struct{ base http.RoundTripper }

func (vt validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		sent := req.Clone(req.Context())
		sent.Body = io.NopCloser(bytes.NewReader(reqBody))
		req = sent
	}
	resp, err := vt.base.RoundTrip(req)
	if err != nil || checker == nil {
		return resp, err
	}
	if req.Method == http.MethodHead || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		checker.skip()
		return resp, nil
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	checker.check(req, reqBody, resp, respBody)
	return resp, nil
}

func (c *conformance) skip() {
	c.mu.Lock()
	c.skipped++
	c.mu.Unlock()
}

// check validates one exchange. The request and the answer are copies, so the test reads the
// answer untouched.
func (c *conformance) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	request := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		return r
	}
	answer := *resp
	answer.Body = io.NopCloser(bytes.NewReader(respBody))
	answer.Request = request()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	where := fmt.Sprintf("%s %s → %d", req.Method, clipForReport(req.URL.RequestURI()), resp.StatusCode)
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		c.problems = append(c.problems, fmt.Sprintf("%s: the answer lacks X-Content-Type-Options: nosniff or the Content-Security-Policy", where))
	}
	reqOK, reqErrs := c.validator.ValidateHttpRequestSync(request())
	if !reqOK && unknownOperation(reqErrs) {
		// No operation: the answer must be the router's own problem.
		code := problemCode(respBody)
		if !(resp.StatusCode == http.StatusNotFound && code == "route_not_found") &&
			!(resp.StatusCode == http.StatusMethodNotAllowed && code == "method_not_allowed" && resp.Header.Get("Allow") != "") {
			c.problems = append(c.problems, fmt.Sprintf("%s: no operation documents this request, yet the answer is not route_not_found or method_not_allowed with Allow: %s", where, clipForReport(string(respBody))))
		}
		return
	}
	if !reqOK {
		c.requests++
		if resp.StatusCode < 400 {
			c.problems = append(c.problems, fmt.Sprintf("%s: the server accepted a request the document refuses: %s", where, describeViolations(reqErrs)))
		}
	}
	if ok, errs := c.validator.ValidateHttpResponse(request(), &answer); !ok {
		c.problems = append(c.problems, fmt.Sprintf("%s: the answer is not what the document declares: %s; body %s", where, describeViolations(errs), clipForReport(string(respBody))))
	}
}

// unknownOperation reports whether the validator found no operation for the request.
func unknownOperation(errs []*verrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType == "path" && (e.ValidationSubType == "missing" || e.ValidationSubType == "missingOperation") {
			return true
		}
	}
	return false
}

func problemCode(body []byte) string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Code
}

func describeViolations(errs []*verrors.ValidationError) string {
	var parts []string
	for _, e := range errs {
		part := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			part += " (" + e.Reason + ")"
		}
		for _, f := range e.SchemaValidationErrors {
			part += fmt.Sprintf(" [%s: %s]", f.FieldPath, f.Reason)
		}
		parts = append(parts, part)
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), "; ")
}

func clipForReport(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// report prints what the checker saw and reports whether every exchange conformed.
func (c *conformance) report() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(os.Stderr, "openapi conformance: %d exchanges checked against openapi.json (%d of them requests the document refuses, refused by the server too), %d HEAD or streamed answers not checked, %d violations\n",
		c.checked, c.requests, c.skipped, len(c.problems))
	slices.Sort(c.problems)
	for _, p := range slices.Compact(c.problems) {
		fmt.Fprintln(os.Stderr, "  violation:", p)
	}
	return len(c.problems) == 0
}
