"""The top of the flow: one report run (pipeline), its bursts, and the scheduler that fires them."""
