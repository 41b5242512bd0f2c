package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteJSON writes the report as the one JSON object docs/api.md fixes:
// {"results": [{"name", "value", "unit", "baseline", "ratio"}]}.
func (r Report) WriteJSON(w io.Writer) error {
	results := r.Results
	if results == nil {
		results = []Result{} // an empty run is an empty list, not null
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(Report{Results: results})
}

// WriteTable writes the report as a table for people, "-" where no baseline applies.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tunit\tbaseline\tratio\t")
	for _, res := range r.Results {
		baseline, ratio := "-", "-"
		if res.Baseline != nil {
			baseline = formatFloat(*res.Baseline)
		}
		if res.Ratio != nil {
			ratio = formatFloat(*res.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", res.Name, formatFloat(res.Value), res.Unit, baseline, ratio)
	}
	return tw.Flush()
}
