"""Speech and sound: transcripts ("said"), sound captions ("heard"), spoken queries, microphone.

transcribe.py           Segment, Transcriber (faster-whisper tiny.en: gated speech pass + caption pass),
                        get_transcriber() (one per device per process)
gate.py / captions.py   the hallucination gate for speech; caption extraction and merging
vad.py                  Silero VAD (bundled with faster-whisper): speech spans of a recording
store.py                save_segments() into the `transcripts` table; transcript_hits() for search
query.py                spoken_text() of a recorded query; speech_fraction()
recorder.py             Recorder / record() / list_input_devices() on sounddevice (PortAudio)
transcribe_library.py   add transcripts to an indexed library without re-embedding video
cli.py                  `mmvsearch record | transcribe | devices`
"""
