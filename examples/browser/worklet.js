// Runs on the audio rendering thread: collects the microphone's samples (channel 0, 128 at a
// time) into 20 ms packets and hands each to the page, which sends it as it is.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 50);
    this.packet = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let i = 0;
      while (i < channel.length) {
        const n = Math.min(channel.length - i, this.size - this.filled);
        this.packet.set(channel.subarray(i, i + n), this.filled);
        this.filled += n;
        i += n;
        if (this.filled === this.size) {
          // Transferred, not copied: the buffer is the page's now, and a new one is made.
          this.port.postMessage(this.packet.buffer, [this.packet.buffer]);
          this.packet = new Float32Array(this.size);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("capture", Capture);
