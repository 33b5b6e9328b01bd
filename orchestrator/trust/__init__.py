"""What downstream servers say, and whether to believe it: checks on definitions before they are served.

Owns: the poisoning and shadowing checks on tool, prompt and resource-template definitions
(``orchestrator.trust._inspect``). Pins, the egress guard and outbound OAuth join it here.

Does not: import ``server``; serve, log or store anything itself.
"""
