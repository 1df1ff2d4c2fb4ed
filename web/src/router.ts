import { createRouter, createWebHistory } from 'vue-router'
import { useT3000 } from './composables/useT3000'

// Each page is its own chunk, so the first screen loads only what it shows.
export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
    { path: '/', name: 'dashboard', component: () => import('./views/DashboardView.vue') },
    { path: '/buildings/:id?', name: 'buildings', component: () => import('./views/BuildingsView.vue') },
    { path: '/devices', name: 'devices', component: () => import('./views/DevicesView.vue') },
    { path: '/devices/:id', name: 'device', component: () => import('./views/PointsView.vue') },
    { path: '/trends', name: 'trends', component: () => import('./views/TrendsView.vue') },
    { path: '/schedules', name: 'schedules', component: () => import('./views/SchedulesView.vue') },
    { path: '/programs', name: 'programs', component: () => import('./views/ProgramsView.vue') },
    { path: '/programs/:id', name: 'program', component: () => import('./views/ProgramView.vue') },
    { path: '/alarms', name: 'alarms', component: () => import('./views/AlarmsView.vue') },
    { path: '/imports', name: 'imports', component: () => import('./views/ImportsView.vue') },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach((to) => {
  const { loggedIn } = useT3000()
  if (!to.meta.public && !loggedIn.value) return { name: 'login', query: { next: to.fullPath } }
})
