// Package demo drives a running orderledger server through the order-to-cash cycle over its
// HTTP API alone: the `orderledger demo` command. It seeds a small catalogue and a few
// customers, places orders on every channel — some for more than the stock holds, so that
// they wait for a purchase order — and takes them through payment, shipment and delivery;
// it cancels some, before and after invoicing, and takes part of others back and refunds it;
// it plays the supplier by receiving every purchase order the server raises for its SKUs;
// and it prints a summary a newcomer can read: orders by status, the documents issued, the
// stock, the trial balance and the sales figures.
//
// What the server does on its own — reserving, backordering, replenishing, invoicing,
// crediting, completing — the demo only waits for, by reading the order back.
package demo
