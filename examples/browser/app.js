// The page: microphone -> AudioWorklet -> WebSocket (float32 PCM at the context's rate);
// results <- WebSocket: each partial replaces the one shown, each final adds a line.
"use strict";

const $ = (id) => document.getElementById(id);
let ws = null;
let context = null;
let microphone = null;

function status(text) {
  $("status").textContent = text;
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds - 60 * m).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

function show(result) {
  if (result.done) {
    $("verdict").textContent = `Stream ended: ${result.verdict}.`;
    return;
  }
  if (!result.full) {
    $("partial").textContent = result.text;
    return;
  }
  $("partial").textContent = "";
  if (!result.text) return;
  const line = document.createElement("div");
  line.className = "final";
  const when = document.createElement("time");
  when.textContent = `${clock(result.start_time)}-${clock(result.end_time)}`;
  line.append(when, result.text);
  $("finals").append(line);
}

async function start() {
  $("start").disabled = true;
  status("Connecting...");
  context = new AudioContext();
  await context.audioWorklet.addModule("worklet.js");
  ws = new WebSocket(`ws://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (event) => show(JSON.parse(event.data));
  ws.onclose = () => {
    status("Disconnected.");
    $("stop").disabled = true;
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("the app did not answer"));
  });
  ws.send(JSON.stringify({ rate: context.sampleRate }));
  // The audio as it is: the resampling, and any gate, are nsaudio's.
  microphone = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const source = context.createMediaStreamSource(microphone);
  const capture = new AudioWorkletNode(context, "capture");
  capture.port.onmessage = (event) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(event.data);
  };
  source.connect(capture);
  await context.resume();
  status(`Listening (${context.sampleRate} Hz): speak.`);
  $("stop").disabled = false;
}

function stop() {
  $("stop").disabled = true;
  microphone.getTracks().forEach((track) => track.stop());
  context.close();
  ws.send("stop"); // the app flushes, drains, and sends the last results and the verdict
  status("Finishing...");
}

$("start").onclick = () => start().catch((err) => status(`Cannot start: ${err.message}`));
$("stop").onclick = stop;
if (new URLSearchParams(location.search).has("autostart")) $("start").click();
