// What the building pages share: floor plan uploads and time zones. (A device's place and moving
// a device are composables/useDevices.ts.)

export const MAX_PLAN_BYTES = 8 * 1024 * 1024
export const PLAN_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/svg+xml']

/** The content type of an image file, from the browser or else the file name. */
export function imageType(f: File): string {
  if (f.type) return f.type
  const ext = f.name.toLowerCase().split('.').pop() ?? ''
  return { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', svg: 'image/svg+xml' }[ext] ?? ''
}

/** Every IANA time zone the browser knows (for suggestions; the server decides). */
export function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] }
  try {
    return intl.supportedValuesOf?.('timeZone') ?? []
  } catch {
    return []
  }
}
