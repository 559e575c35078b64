"""The ``nsaudio`` command line."""
