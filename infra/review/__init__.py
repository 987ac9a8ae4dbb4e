"""Review a program offline: synth under recording mocks, diff, rules."""
