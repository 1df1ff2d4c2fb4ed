// The audible cue of a new alarm: a short two-tone beep made with the Web Audio API (no sound file).
//
// Browsers keep audio blocked until the page had a user gesture, so the audio context is created
// or resumed on the first click / key press; until then `blocked` is true and the page offers an
// "Enable sound" button. The mute choice is kept in localStorage.
import { ref } from 'vue'

const MUTE_KEY = 't3000.alarms.muted'

function readMuted(): boolean {
  try {
    return globalThis.localStorage?.getItem(MUTE_KEY) === '1'
  } catch {
    return false
  }
}

/** The user muted the alarm sound (kept across visits). */
export const muted = ref(readMuted())
/** Sound is wanted but the browser has not allowed it yet (no user gesture so far). */
export const blocked = ref(false)
/** Beeps played since the page loaded (for tests and the page's status line). */
export const played = ref(0)

type AudioCtor = new () => AudioContext
let ctx: AudioContext | null = null
let listening = false

function audioClass(): AudioCtor | null {
  const g = globalThis as unknown as { AudioContext?: AudioCtor; webkitAudioContext?: AudioCtor }
  return g.AudioContext ?? g.webkitAudioContext ?? null
}

export function setMuted(v: boolean) {
  muted.value = v
  try {
    if (v) globalThis.localStorage?.setItem(MUTE_KEY, '1')
    else globalThis.localStorage?.removeItem(MUTE_KEY)
  } catch {
    // Storage disabled: the choice holds for this page.
  }
  if (!v) void unlock()
}

/** Creates or resumes the audio context; succeeds only during (or after) a user gesture. */
export async function unlock(): Promise<boolean> {
  const C = audioClass()
  if (!C) return false
  try {
    ctx ??= new C()
    if (ctx.state === 'suspended') await ctx.resume()
  } catch {
    return false
  }
  blocked.value = ctx.state !== 'running'
  return !blocked.value
}

/** Unlocks audio on the first user gesture anywhere on the page. */
export function listenForGesture() {
  if (listening || typeof window === 'undefined') return
  listening = true
  const once = () => {
    void unlock().then((ok) => {
      if (ok) {
        window.removeEventListener('pointerdown', once, true)
        window.removeEventListener('keydown', once, true)
      }
    })
  }
  window.addEventListener('pointerdown', once, true)
  window.addEventListener('keydown', once, true)
}

/** Plays the alarm cue unless muted; marks the sound blocked when the browser does not allow it. */
export function beep() {
  if (muted.value) return
  const C = audioClass()
  if (!C) return
  if (!ctx || ctx.state !== 'running') {
    blocked.value = true
    listenForGesture()
    // A context made before any gesture starts suspended; try anyway (allowed after one).
    void unlock().then((ok) => ok && tone())
    return
  }
  tone()
}

function tone() {
  if (!ctx) return
  const t0 = ctx.currentTime
  const gain = ctx.createGain()
  gain.connect(ctx.destination)
  gain.gain.setValueAtTime(0.0001, t0)
  // Two short tones, 880 Hz then 660 Hz, with soft edges so they do not click.
  ;[
    [880, 0],
    [660, 0.2],
  ].forEach(([freq, at]) => {
    const osc = ctx!.createOscillator()
    osc.type = 'sine'
    osc.frequency.setValueAtTime(freq, t0 + at)
    osc.connect(gain)
    osc.start(t0 + at)
    osc.stop(t0 + at + 0.16)
  })
  gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.02)
  gain.gain.setValueAtTime(0.25, t0 + 0.14)
  gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.17)
  gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.22)
  gain.gain.setValueAtTime(0.25, t0 + 0.34)
  gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.37)
  played.value += 1
}
