"""NeuralSpace VoiceAI: the pure protocol, the REST calls, and opening sessions."""
