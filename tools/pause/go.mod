// The pod sandbox ("pause") process for the e2e node's sandbox image: no registry is reachable
// here, so it is built from this source by scripts/tools.sh. Not part of sluice itself.
module sluice.local/tools/pause

go 1.24.0
